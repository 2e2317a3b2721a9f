-- TEMPORARY minimal schema; replaced by the full domain schema.
CREATE TABLE users (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE, email TEXT UNIQUE, password TEXT, type TEXT NOT NULL DEFAULT 'user', verified BIGINT NOT NULL DEFAULT 0, created BIGINT NOT NULL);
CREATE TABLE api_tokens (id BIGSERIAL PRIMARY KEY, user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE, digest TEXT NOT NULL UNIQUE, expires_at BIGINT, description TEXT, created BIGINT NOT NULL);
