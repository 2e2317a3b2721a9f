//! The page frame shared by the portal and the admin UI (`templates/base.html`).

use super::Browser;

/// A flash message shown once at the top of the next page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    /// `ok`, `error` or `info` (a CSS class).
    pub kind: String,
    /// The message (escaped when rendered).
    pub text: String,
}

impl Flash {
    /// A success message.
    pub fn ok(text: impl Into<String>) -> Self {
        Self { kind: "ok".to_owned(), text: text.into() }
    }

    /// An error message.
    pub fn error(text: impl Into<String>) -> Self {
        Self { kind: "error".to_owned(), text: text.into() }
    }

    /// A neutral message.
    pub fn info(text: impl Into<String>) -> Self {
        Self { kind: "info".to_owned(), text: text.into() }
    }
}

/// A navigation link of the top bar.
#[derive(Debug, Clone)]
pub struct NavLink {
    /// Text.
    pub label: String,
    /// Target.
    pub href: String,
    /// Highlighted as the current section.
    pub active: bool,
}

/// What the base template needs.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Page title (before the site name).
    pub title: String,
    /// Site name (the event's `ctf_name`, or "fctf admin").
    pub site_name: String,
    /// Where the site name links.
    pub home: String,
    /// Top-bar links.
    pub nav: Vec<NavLink>,
    /// Signed-in name, if any.
    pub user: Option<String>,
    /// Where the log-out form posts (shown when `user` is set).
    pub logout_action: String,
    /// CSRF token for the page's forms.
    pub csrf: String,
    /// Flash message.
    pub flash: Option<Flash>,
    /// `dark`, `light` or `auto`.
    pub theme: String,
    /// Open the live notification stream at this URL (the script shows toasts).
    pub live_events: Option<String>,
    /// Reload the page after this many seconds (works without JavaScript).
    pub refresh: Option<u32>,
    /// The request's path and query: where `refresh` goes. Explicit, because a refresh to the
    /// current address would only scroll when that address has a fragment (`#instance`).
    pub path: String,
    /// A banner under the top bar (e.g. event state).
    pub banner: Option<String>,
}

impl Layout {
    /// A frame for `browser` with no navigation yet.
    pub fn new(browser: &Browser, site_name: impl Into<String>, title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            site_name: site_name.into(),
            home: "/".to_owned(),
            nav: Vec::new(),
            user: None,
            logout_action: "/logout".to_owned(),
            csrf: browser.csrf_token(),
            flash: browser.flash(),
            theme: browser.theme().to_owned(),
            live_events: None,
            refresh: None,
            path: browser.path.clone(),
            banner: None,
        }
    }

    /// Adds a navigation link, active when `current` starts with `href`.
    pub fn link(mut self, label: &str, href: &str, current: &str) -> Self {
        let active = if href == "/" { current == "/" } else { current.starts_with(href) };
        self.nav.push(NavLink { label: label.to_owned(), href: href.to_owned(), active });
        self
    }
}
