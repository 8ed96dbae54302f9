//! Reading what the layer verified inside tonic handlers.
//!
//! ```
//! use tiergate::grpc::RequestExt;
//!
//! fn export(req: &tonic::Request<()>) -> Result<String, tonic::Status> {
//!     let ent = req.require_feature("reports.export")?; // PERMISSION_DENIED with upgrade_to
//!     Ok(format!("exporting on {}", ent.plan()))
//! }
//!
//! // Without the layer there are no Entitlements: the handler fails closed.
//! let status = export(&tonic::Request::new(())).unwrap_err();
//! assert_eq!(status.code(), tonic::Code::Internal);
//! ```

use tonic::{Code, Request, Status};

use crate::token::VerifiedToken;
use crate::{Caller, Entitlements};

/// What the layer put on a gRPC request.
pub trait RequestExt {
    /// The caller's entitlements, when the layer verified a token.
    fn entitlements(&self) -> Option<&Entitlements>;

    /// The verified token, when there was one.
    fn verified_token(&self) -> Option<&VerifiedToken>;

    /// The entitlements, or INTERNAL when the layer did not run (never a pass).
    fn require_entitlements(&self) -> Result<&Entitlements, Status> {
        self.entitlements().ok_or_else(|| {
            Status::new(
                Code::Internal,
                "no Entitlements on this request: the service is not behind tiergate's layer",
            )
        })
    }

    /// The entitlements if they include `feature`; otherwise PERMISSION_DENIED with the
    /// reason and the plan that would allow it.
    fn require_feature(&self, feature: &str) -> Result<&Entitlements, Status> {
        let ent = self.require_entitlements()?;
        let d = ent.check(feature);
        if d.allowed() {
            return Ok(ent);
        }
        let mut status = Status::new(Code::PermissionDenied, d.explanation());
        if let Ok(v) = d.reason().code().parse() {
            status.metadata_mut().insert("tiergate-reason", v);
        }
        if let Some(v) = d.upgrade_to().and_then(|u| u.parse().ok()) {
            status.metadata_mut().insert("tiergate-upgrade-to", v);
        }
        Err(status)
    }
}

impl<T> RequestExt for Request<T> {
    fn entitlements(&self) -> Option<&Entitlements> {
        self.extensions()
            .get::<Caller>()
            .and_then(Caller::entitlements)
    }

    fn verified_token(&self) -> Option<&VerifiedToken> {
        self.extensions().get::<Caller>().and_then(Caller::token)
    }
}
