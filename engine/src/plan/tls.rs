//! The TLS settings that apply to a run, checked before the first connection.

use std::path::Path;

use super::Target;
use super::error::{PlanError, located};
use crate::profile::spec::{ProfileSpec, TlsSpec};
use crate::scenario::vars::Vars;

/// Checks the TLS settings that apply: the CA file must hold certificates, and the server name must
/// be one, so that neither is a surprise on the first connection.
pub(super) fn resolve_tls(
    spec: &ProfileSpec,
    tls: Option<&TlsSpec>,
    field: &str,
    target: &Target,
    base_dir: &Path,
    vars: &mut Vars,
    process_env: &dyn Fn(&str) -> Option<String>,
) -> Result<crate::tls::TlsSettings, PlanError> {
    let Some(tls) = tls else {
        return Ok(crate::tls::TlsSettings::default());
    };
    let mut out = crate::tls::TlsSettings {
        ca_file: None,
        insecure: tls.insecure,
        server_name: None,
    };
    let uses_tls = match target {
        Target::Http { tls, .. } => *tls,
        Target::Other { scheme, .. } => scheme == "wss",
        Target::Embedded => false,
    };
    if let Some(ca) = &tls.ca_file {
        let at = format!("{field}.ca_file");
        let name = vars
            .substitute(ca, process_env)
            .map_err(|m| located(spec, at.clone(), Some(ca), m))?;
        let path = base_dir.join(name);
        if uses_tls {
            crate::tls::read_certificates(&path)
                .map_err(|e| located(spec, at.clone(), Some(ca), e.to_string()))?;
        }
        out.ca_file = Some(path);
    }
    if let Some(name) = &tls.server_name {
        let at = format!("{field}.server_name");
        crate::tls::server_name(name).map_err(|e| located(spec, at, Some(name), e.to_string()))?;
        out.server_name = Some(name.clone());
    }
    Ok(out)
}
