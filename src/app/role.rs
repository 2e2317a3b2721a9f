//! Roles and role sets. `all` is a set (every role), never a separate code path.

use std::fmt;

/// One component of fctf that a process can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Api,
    Gateway,
    Consumer,
    Listener,
    Center,
    /// Every role; expanded by `RoleSet`.
    All,
}

impl Role {
    /// Every concrete role, in start order.
    pub const CONCRETE: [Role; 5] = [Role::Center, Role::Consumer, Role::Listener, Role::Api, Role::Gateway];

    /// The role's name as used on the command line and in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Api => "api",
            Role::Gateway => "gateway",
            Role::Consumer => "consumer",
            Role::Listener => "listener",
            Role::Center => "center",
            Role::All => "all",
        }
    }

    /// True for roles that read or write the store.
    pub fn uses_store(&self) -> bool {
        !matches!(self, Role::Gateway)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses one role name (kebab or snake case, any letter case).
pub fn parse_role(value: &str) -> Result<Role, String> {
    match value.trim().to_ascii_lowercase().replace('_', "-").as_str() {
        "api" => Ok(Role::Api),
        "gateway" => Ok(Role::Gateway),
        "consumer" => Ok(Role::Consumer),
        "listener" => Ok(Role::Listener),
        "center" => Ok(Role::Center),
        "all" => Ok(Role::All),
        other => Err(format!("unknown role `{other}`; valid roles: api, gateway, consumer, listener, center, all")),
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        parse_role(value)
    }
}

/// The set of concrete roles one process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RoleSet {
    bits: u8,
}

impl RoleSet {
    /// Every role.
    pub fn all() -> Self {
        Self::from_roles(&[Role::All])
    }

    /// Expands `All` and collects the given roles.
    pub fn from_roles(roles: &[Role]) -> Self {
        let mut set = Self::default();
        for role in roles {
            match role {
                Role::All => {
                    for concrete in Role::CONCRETE {
                        set.bits |= bit(concrete);
                    }
                }
                concrete => set.bits |= bit(*concrete),
            }
        }
        set
    }

    /// Parses role names (`["api", "gateway"]`, or comma-separated entries).
    pub fn parse(names: &[String]) -> Result<Self, String> {
        let mut roles = Vec::new();
        for name in names {
            for part in name.split(',').filter(|part| !part.trim().is_empty()) {
                roles.push(parse_role(part)?);
            }
        }
        if roles.is_empty() {
            return Err("no role selected; valid roles: api, gateway, consumer, listener, center, all".to_owned());
        }
        Ok(Self::from_roles(&roles))
    }

    /// True when the role runs in this process.
    pub fn contains(&self, role: Role) -> bool {
        if role == Role::All {
            return self.is_all();
        }
        self.bits & bit(role) != 0
    }

    /// True when every role runs in this process.
    pub fn is_all(&self) -> bool {
        Role::CONCRETE.iter().all(|role| self.bits & bit(*role) != 0)
    }

    /// The concrete roles, in start order.
    pub fn iter(&self) -> impl Iterator<Item = Role> + '_ {
        Role::CONCRETE.into_iter().filter(|role| self.contains(*role))
    }
}

impl fmt::Display for RoleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Role::as_str).collect();
        f.write_str(&names.join(","))
    }
}

fn bit(role: Role) -> u8 {
    match role {
        Role::Api => 1,
        Role::Gateway => 2,
        Role::Consumer => 4,
        Role::Listener => 8,
        Role::Center => 16,
        Role::All => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_expands_to_every_role() {
        let set = RoleSet::parse(&["all".to_owned()]).unwrap();
        assert!(set.is_all());
        assert_eq!(set.to_string(), "center,consumer,listener,api,gateway");
    }

    #[test]
    fn parses_lists_and_kebab_or_snake_case() {
        let set = RoleSet::parse(&["api,Gateway".to_owned()]).unwrap();
        assert!(set.contains(Role::Api) && set.contains(Role::Gateway));
        assert!(!set.contains(Role::Center) && !set.is_all());
    }

    #[test]
    fn unknown_role_lists_valid_values() {
        let error = RoleSet::parse(&["apii".to_owned()]).unwrap_err();
        assert!(error.contains("valid roles: api, gateway"), "{error}");
    }
}
