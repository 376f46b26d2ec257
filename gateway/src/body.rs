//! The bodies on the proxy path, as enums rather than boxed trait objects: a proxied request
//! or response is passed through as hyper's own streaming body, with no allocation per request.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::Limited;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use crate::pool::PooledBody;

/// Errors of the bodies below.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body on its way upstream.
#[derive(Debug, Default)]
pub enum UpstreamBody {
    /// Nothing.
    #[default]
    Empty,
    /// The client's body, streamed as it arrives.
    Client(Incoming),
    /// The client's body of unknown length, capped as it streams.
    Capped(Limited<Incoming>),
    /// A body that may be sent again if the first attempt never connected (see [`BodySlot`]).
    Slot(SlotBody),
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Self::Empty => Poll::Ready(None),
            Self::Client(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            Self::Capped(body) => Pin::new(body).poll_frame(cx),
            Self::Slot(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Empty => true,
            Self::Client(body) => body.is_end_stream(),
            Self::Capped(body) => body.is_end_stream(),
            Self::Slot(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Empty => SizeHint::with_exact(0),
            Self::Client(body) => body.size_hint(),
            Self::Capped(body) => body.size_hint(),
            Self::Slot(body) => body.size_hint(),
        }
    }
}

/// A request body that can be handed to several attempts, as long as none has started
/// reading it: each attempt gets a [`SlotBody`] that takes the real body out of the shared
/// slot when first polled. An attempt that fails to connect never polls it, so the body is
/// still there for the next one.
#[derive(Debug)]
pub struct BodySlot {
    slot: Arc<Mutex<Option<UpstreamBody>>>,
    hint: SizeHint,
}

impl BodySlot {
    /// A slot holding `body`.
    pub fn new(body: UpstreamBody) -> Self {
        let hint = body.size_hint();
        Self {
            slot: Arc::new(Mutex::new(Some(body))),
            hint,
        }
    }

    /// A body for one attempt.
    pub fn attempt(&self) -> SlotBody {
        SlotBody {
            slot: self.slot.clone(),
            body: None,
            hint: self.hint,
        }
    }

    /// Whether no attempt has started sending the body.
    pub fn is_untouched(&self) -> bool {
        self.slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }
}

/// One attempt's view of a [`BodySlot`].
#[derive(Debug)]
pub struct SlotBody {
    slot: Arc<Mutex<Option<UpstreamBody>>>,
    body: Option<Box<UpstreamBody>>,
    hint: SizeHint,
}

impl Body for SlotBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.body.is_none() {
            let taken = self
                .slot
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            match taken {
                Some(body) => self.body = Some(Box::new(body)),
                None => return Poll::Ready(Some(Err("the request body was already sent".into()))),
            }
        }
        match self.body.as_mut() {
            Some(body) => Pin::new(body.as_mut()).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.body {
            Some(body) => body.size_hint(),
            None => self.hint,
        }
    }
}

/// A response body on its way to the client: an upstream's, streamed, or the gateway's own.
#[derive(Debug)]
pub enum EdgeBody {
    /// The upstream's body, streamed as it arrives.
    Upstream(PooledBody),
    /// An answer of the gateway (a problem, a document, a probe).
    Local(axum::body::Body),
}

impl Default for EdgeBody {
    fn default() -> Self {
        Self::Local(axum::body::Body::empty())
    }
}

impl From<axum::body::Body> for EdgeBody {
    fn from(body: axum::body::Body) -> Self {
        Self::Local(body)
    }
}

impl Body for EdgeBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Self::Upstream(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            Self::Local(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Upstream(body) => body.is_end_stream(),
            Self::Local(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Upstream(body) => body.size_hint(),
            Self::Local(body) => body.size_hint(),
        }
    }
}
