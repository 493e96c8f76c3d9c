//! Client tokens: HS256 JWTs with `sub`, `role`, `name`, `device`, `exp`,
//! and `iat` (issued at) for tokens that can be signed out.
//!
//! Two kinds share the format: access tokens, which open sockets and call
//! the API, and refresh tokens (`typ: "refresh"`), which only buy a new pair
//! at `POST /api/refresh`. Neither is accepted as the other.

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// What a client is allowed to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Customer,
    Agent,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Agent => "agent",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "customer" => Some(Role::Customer),
            "agent" => Some(Role::Agent),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// The frame `category` this role sends messages in.
    pub fn category(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Agent | Role::Admin => "manager",
        }
    }
}

/// The claims of a verified token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Issued at, seconds since the Unix epoch: a sign-out refuses every
    /// token of the user issued up to its second (a token without `iat` too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// `"refresh"` for a refresh token; absent for an access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
}

/// The `typ` of a refresh token.
pub const REFRESH: &str = "refresh";

impl Claims {
    /// Access-token claims for `sub` expiring at `exp`, issued now.
    pub fn new(sub: impl Into<String>, role: Role, exp: u64) -> Claims {
        Claims {
            sub: sub.into(),
            role,
            name: None,
            device: None,
            exp,
            iat: Some(now_secs()),
            typ: None,
        }
    }

    pub fn is_refresh(&self) -> bool {
        self.typ.as_deref() == Some(REFRESH)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token expired")]
    Expired,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("cannot sign token: {0}")]
    Sign(String),
}

/// The sender of toasts and the assess invitation; no token may claim it.
pub const SYSTEM_USER: &str = "system";

/// Longest user id a token may carry.
pub const MAX_USER_ID: usize = 128;

/// Signs claims with the shared secret.
pub fn sign(secret: &[u8], claims: &Claims) -> Result<String, TokenError> {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(|e| TokenError::Sign(e.to_string()))
}

/// Verifies an access token: HS256 only, `exp` required and in the future,
/// `nbf` honoured; a refresh token is refused.
pub fn verify(secret: &[u8], token: &str) -> Result<Claims, TokenError> {
    let claims = verify_any(secret, token)?;
    if claims.typ.is_some() {
        return Err(TokenError::Invalid(
            "a refresh token only buys a new token at POST /api/refresh".into(),
        ));
    }
    Ok(claims)
}

/// Verifies a refresh token: as [`verify`], and `typ` must be `"refresh"`.
pub fn verify_refresh(secret: &[u8], token: &str) -> Result<Claims, TokenError> {
    let claims = verify_any(secret, token)?;
    if !claims.is_refresh() {
        return Err(TokenError::Invalid("not a refresh token".into()));
    }
    Ok(claims)
}

fn verify_any(secret: &[u8], token: &str) -> Result<Claims, TokenError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_required_spec_claims(&["exp"]);
    validation.leeway = 0;
    // A token minted for later is not valid yet.
    validation.validate_nbf = true;
    let data = decode::<Claims>(token, &DecodingKey::from_secret(secret), &validation).map_err(
        |e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
            _ => TokenError::Invalid(e.to_string()),
        },
    )?;
    let claims = data.claims;
    if claims.sub.is_empty() || claims.sub.len() > MAX_USER_ID {
        return Err(TokenError::Invalid("sub must be 1 to 128 bytes".into()));
    }
    if claims.sub == SYSTEM_USER {
        return Err(TokenError::Invalid(format!(
            "sub {SYSTEM_USER:?} is reserved for the server's notices"
        )));
    }
    Ok(claims)
}

/// Seconds since the epoch `ttl` from now, for `exp`.
pub fn expiry_after(ttl: std::time::Duration) -> u64 {
    now_secs() + ttl.as_secs()
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
