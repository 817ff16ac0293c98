//! Local-emulator support: an SDK HTTP client that lets one request at a
//! time reach moto. moto does not isolate concurrent DynamoDB transactions (a cancelled one
//! restores table copies taken at its start, erasing writes made meanwhile), so code that is
//! correct on DynamoDB — concurrent records, racing writers — needs requests serialised to see
//! the same guarantees locally. Never used against AWS.

use std::sync::Arc;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

/// An HTTP client over the SDK's default connector that admits one request at a time (per
/// client value and its clones), held until the response head arrives.
#[derive(Debug, Clone)]
pub struct OneAtATime {
    gate: Arc<tokio::sync::Semaphore>,
}

impl Default for OneAtATime {
    fn default() -> Self {
        Self {
            gate: Arc::new(tokio::sync::Semaphore::new(1)),
        }
    }
}

impl OneAtATime {
    /// A new gate; clients built with clones of it share it.
    pub fn new() -> Self {
        Self::default()
    }
}

impl HttpClient for OneAtATime {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let inner = aws_smithy_http_client::default_connector(settings, components.sleep_impl());
        SharedHttpConnector::new(GatedConnector {
            inner,
            gate: Arc::clone(&self.gate),
        })
    }
}

#[derive(Debug)]
struct GatedConnector {
    inner: Option<SharedHttpConnector>,
    gate: Arc<tokio::sync::Semaphore>,
}

impl HttpConnector for GatedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (inner, gate) = (self.inner.clone(), Arc::clone(&self.gate));
        HttpConnectorFuture::new(async move {
            let inner = inner.ok_or_else(|| {
                ConnectorError::other("no default HTTP connector in this build".into(), None)
            })?;
            let _permit = gate
                .acquire_owned()
                .await
                .map_err(|e| ConnectorError::other(Box::new(e), None))?;
            inner.call(request).await
        })
    }
}
