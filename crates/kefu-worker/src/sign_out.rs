//! Signing out: once a user signs out (`POST /api/logout`, or an admin signs
//! an agent out), every token of theirs issued up to that second is
//! refused; a disabled agent's every token is. Their open connections are
//! closed with 4401 within about a second, on every gateway.
//!
//! The database is the truth (`users.tokens_revoked_at`, `users.disabled`).
//! Each worker keeps the sign-outs in memory and reads the recent ones
//! every second, so one made through another worker, or by `kefu agent
//! disable` beside a running cluster, holds here within about a second;
//! the worker that learns of it then closes the user's signed-out
//! connections. Several workers may close the same connection: the second
//! close finds it gone.

use crate::{outbox::Outbox, Inner};
use dashmap::DashMap;
use kefu_protocol::{ErrorCode, ProtocolError};
use std::sync::Arc;
use std::time::Duration;

/// The close code of a signed-out connection (as for a refused token).
pub const SIGNED_OUT_CLOSE: u32 = 4401;

/// How often each worker reads the recent sign-outs.
const POLL: Duration = Duration::from_secs(1);

/// Sign-outs this recent are closed again by a worker that starts.
const RECENT_MS: i64 = 3600 * 1000;

/// Re-read this far back at each poll: a sign-out stamped by one worker may
/// commit after another worker's later one, and clocks differ a little.
const SLACK_MS: i64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SignedOut {
    /// When, in ms since the epoch.
    pub at_ms: i64,
    pub disabled: bool,
}

impl SignedOut {
    /// The last second whose tokens are refused.
    fn up_to_secs(self) -> u64 {
        if self.disabled {
            u64::MAX
        } else {
            (self.at_ms.max(0) / 1000) as u64
        }
    }
}

/// Why a token issued at `issued_at` (seconds; 0: no `iat`) no longer
/// counts after `signed_out`, if it does not.
pub(crate) fn refused(signed_out: SignedOut, issued_at: u64) -> Option<ProtocolError> {
    let message = if signed_out.disabled {
        "this account is disabled; ask an administrator"
    } else if issued_at <= signed_out.up_to_secs() {
        "this token was signed out; sign in again"
    } else {
        return None;
    };
    Some(ProtocolError::new(ErrorCode::Unauthorized, message))
}

/// The `iat` of a token minted now for a user last signed out at
/// `signed_out_ms`: after that second, so the new token counts.
pub(crate) fn issue_after(signed_out_ms: Option<i64>) -> u64 {
    let now = kefu_protocol::token::now_secs();
    match signed_out_ms {
        Some(ms) => now.max((ms.max(0) / 1000) as u64 + 1),
        None => now,
    }
}

/// The sign-outs this worker knows of.
#[derive(Default)]
pub(crate) struct SignOuts {
    users: DashMap<String, SignedOut>,
}

impl SignOuts {
    /// Why a token of `user` issued at `issued_at` (seconds; 0: no `iat`)
    /// no longer counts, if it does not.
    pub(crate) fn refusal(&self, user: &str, issued_at: u64) -> Option<ProtocolError> {
        let signed_out = *self.users.get(user)?;
        refused(signed_out, issued_at)
    }

    /// Records a sign-out; true if it is newer than what was known.
    fn record(&self, user: &str, signed_out: SignedOut) -> bool {
        let mut changed = true;
        self.users
            .entry(user.to_owned())
            .and_modify(|known| {
                changed = signed_out.at_ms > known.at_ms
                    || (signed_out.at_ms == known.at_ms && signed_out.disabled != known.disabled);
                if changed {
                    *known = signed_out;
                }
            })
            .or_insert(signed_out);
        changed
    }
}

/// Takes a sign-out made here: refused from now on by this worker, and the
/// user's signed-out connections closed.
pub(crate) async fn signed_out(inner: &Inner, user: &str, signed_out: SignedOut) {
    if inner.sign_outs.record(user, signed_out) {
        close(inner, user, signed_out).await;
    }
}

async fn close(inner: &Inner, user: &str, signed_out: SignedOut) {
    tracing::info!(
        user,
        disabled = signed_out.disabled,
        "signed out; closing the user's connections"
    );
    let mut out = Outbox::default();
    out.close_signed_out(inner, user, signed_out.up_to_secs(), SIGNED_OUT_CLOSE)
        .await;
    out.send(inner).await;
}

/// Reads the sign-outs every second: all of them at first, then the recent
/// ones. At the first read it closes the connections of users signed out in
/// the last hour too: a socket may have come in (say, in the reconnections
/// after a restart) before this worker knew of its sign-out.
pub(crate) fn start(inner: Arc<Inner>) {
    let lifecycle = inner.lifecycle.clone();
    lifecycle.spawn_loop(async move {
        let mut since = i64::MIN;
        let mut loaded = false;
        let mut ticker = tokio::time::interval(POLL);
        loop {
            ticker.tick().await;
            if !inner.store.reachable() {
                continue;
            }
            let rows = match inner.store.sign_outs_since(since).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::debug!(error = %e, "cannot read sign-outs");
                    continue;
                }
            };
            for (user, at_ms, disabled) in rows {
                since = since.max(at_ms - SLACK_MS);
                let signed_out = SignedOut { at_ms, disabled };
                let recent = kefu_protocol::now_ms() - at_ms < RECENT_MS;
                if inner.sign_outs.record(&user, signed_out) && (loaded || recent) {
                    close(&inner, &user, signed_out).await;
                }
            }
            loaded = true;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_up_to_the_second_of_a_sign_out_are_refused_later_ones_count() {
        let outs = SignOuts::default();
        assert!(outs.refusal("ann", 0).is_none(), "never signed out");
        outs.record(
            "ann",
            SignedOut {
                at_ms: 1_700_000_000_500,
                disabled: false,
            },
        );
        assert!(outs.refusal("ann", 0).is_some(), "no iat");
        assert!(outs.refusal("ann", 1_699_999_999).is_some());
        assert!(outs.refusal("ann", 1_700_000_000).is_some(), "same second");
        assert!(outs.refusal("ann", 1_700_000_001).is_none());
        assert!(outs.refusal("bob", 0).is_none());
        assert!(issue_after(Some(1_700_000_000_500)) >= 1_700_000_001);
    }

    #[test]
    fn a_disabled_account_refuses_every_token_and_only_newer_news_counts() {
        let outs = SignOuts::default();
        let disabled = SignedOut {
            at_ms: 2_000,
            disabled: true,
        };
        assert!(outs.record("ann", disabled));
        assert!(!outs.record("ann", disabled), "the same again");
        assert!(outs.refusal("ann", u64::MAX - 1).is_some());
        let older = SignedOut {
            at_ms: 1_000,
            disabled: false,
        };
        assert!(!outs.record("ann", older), "older news is ignored");
        let enabled = SignedOut {
            at_ms: 3_000,
            disabled: false,
        };
        assert!(outs.record("ann", enabled));
        assert!(outs.refusal("ann", 4).is_none());
    }
}
