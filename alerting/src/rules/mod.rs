//! Rule files: the YAML reader with positions ([`yaml`]) and the Prometheus
//! rule file format with its validation ([`file`]).

pub mod file;
pub mod yaml;
