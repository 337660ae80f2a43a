//! crtask OCI registry client (digest polling).
