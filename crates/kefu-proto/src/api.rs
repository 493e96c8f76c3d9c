//! The error codes of HTTP calls on the wire, one for one with
//! [`kefu_protocol::ErrorCode`].

use crate::v1::{self, api_reply::Reply};
use kefu_protocol::{ErrorCode, ProtocolError};

impl From<ErrorCode> for v1::ErrorCode {
    fn from(code: ErrorCode) -> Self {
        match code {
            ErrorCode::BadRequest => v1::ErrorCode::BadRequest,
            ErrorCode::Unauthorized => v1::ErrorCode::Unauthorized,
            ErrorCode::Forbidden => v1::ErrorCode::Forbidden,
            ErrorCode::NotFound => v1::ErrorCode::NotFound,
            ErrorCode::Conflict => v1::ErrorCode::Conflict,
            ErrorCode::RateLimited => v1::ErrorCode::RateLimited,
            ErrorCode::TooLarge => v1::ErrorCode::TooLarge,
            ErrorCode::Unavailable => v1::ErrorCode::Unavailable,
            ErrorCode::Internal => v1::ErrorCode::Internal,
        }
    }
}

impl From<v1::ErrorCode> for ErrorCode {
    /// A code this build does not know (a newer worker's) is the server's
    /// trouble, not the client's.
    fn from(code: v1::ErrorCode) -> Self {
        match code {
            v1::ErrorCode::BadRequest => ErrorCode::BadRequest,
            v1::ErrorCode::Unauthorized => ErrorCode::Unauthorized,
            v1::ErrorCode::Forbidden => ErrorCode::Forbidden,
            v1::ErrorCode::NotFound => ErrorCode::NotFound,
            v1::ErrorCode::Conflict => ErrorCode::Conflict,
            v1::ErrorCode::RateLimited => ErrorCode::RateLimited,
            v1::ErrorCode::TooLarge => ErrorCode::TooLarge,
            v1::ErrorCode::Unavailable => ErrorCode::Unavailable,
            v1::ErrorCode::Internal | v1::ErrorCode::Unspecified => ErrorCode::Internal,
        }
    }
}

impl From<ProtocolError> for v1::ApiReply {
    fn from(e: ProtocolError) -> Self {
        v1::ApiReply {
            reply: Some(Reply::Error(v1::ApiError {
                code: v1::ErrorCode::from(e.code) as i32,
                message: e.message,
            })),
        }
    }
}

impl From<v1::ApiError> for ProtocolError {
    fn from(e: v1::ApiError) -> Self {
        let code = v1::ErrorCode::try_from(e.code).unwrap_or(v1::ErrorCode::Unspecified);
        ProtocolError::new(code.into(), e.message)
    }
}

impl v1::ApiReply {
    /// An answer the client gets as is.
    pub fn json(status: u16, body: impl Into<bytes::Bytes>) -> Self {
        v1::ApiReply {
            reply: Some(Reply::Json(v1::JsonAnswer {
                status: u32::from(status),
                body: body.into(),
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_crosses_the_wire_unchanged() {
        use ErrorCode::*;
        let all = [
            BadRequest,
            Unauthorized,
            Forbidden,
            NotFound,
            Conflict,
            RateLimited,
            TooLarge,
            Unavailable,
            Internal,
        ];
        for code in all {
            let reply = v1::ApiReply::from(ProtocolError::new(code, "why"));
            let bytes = prost::Message::encode_to_vec(&reply);
            let back: v1::ApiReply = prost::Message::decode(bytes.as_slice()).expect("decodes");
            let Some(Reply::Error(e)) = back.reply else {
                panic!("{code:?} is not an error reply");
            };
            let e = ProtocolError::from(e);
            assert_eq!((e.code, e.message.as_str()), (code, "why"));
        }
        let unknown = v1::ApiError {
            code: 99,
            message: "newer".into(),
        };
        assert_eq!(ProtocolError::from(unknown).code, Internal);
    }
}
