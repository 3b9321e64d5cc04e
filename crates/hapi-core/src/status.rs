//! The one table of HAPI status codes: code, standard message and HTTP status (spec §4.2).

use std::fmt;

/// Every status code of HAPI 3.3 (spec §4.2, appendix §8.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HapiStatus {
    /// 1200
    Ok,
    /// 1201
    NoData,
    /// 1400
    BadRequest,
    /// 1401
    UnknownApiParameter,
    /// 1402
    BadStart,
    /// 1403
    BadStop,
    /// 1404
    StartNotBeforeStop,
    /// 1405
    OutsideRange,
    /// 1406
    UnknownDataset,
    /// 1407
    UnknownParameter,
    /// 1408
    TooMuchData,
    /// 1409
    BadFormat,
    /// 1410
    BadInclude,
    /// 1411
    ParameterOrder,
    /// 1412
    BadResolveReferences,
    /// 1413
    BadDepth,
    /// 1500
    Internal,
    /// 1501
    Upstream,
}

impl HapiStatus {
    /// All codes, in numeric order.
    pub const ALL: [HapiStatus; 18] = [
        Self::Ok,
        Self::NoData,
        Self::BadRequest,
        Self::UnknownApiParameter,
        Self::BadStart,
        Self::BadStop,
        Self::StartNotBeforeStop,
        Self::OutsideRange,
        Self::UnknownDataset,
        Self::UnknownParameter,
        Self::TooMuchData,
        Self::BadFormat,
        Self::BadInclude,
        Self::ParameterOrder,
        Self::BadResolveReferences,
        Self::BadDepth,
        Self::Internal,
        Self::Upstream,
    ];

    /// The numeric HAPI code.
    pub fn code(self) -> u16 {
        match self {
            Self::Ok => 1200,
            Self::NoData => 1201,
            Self::BadRequest => 1400,
            Self::UnknownApiParameter => 1401,
            Self::BadStart => 1402,
            Self::BadStop => 1403,
            Self::StartNotBeforeStop => 1404,
            Self::OutsideRange => 1405,
            Self::UnknownDataset => 1406,
            Self::UnknownParameter => 1407,
            Self::TooMuchData => 1408,
            Self::BadFormat => 1409,
            Self::BadInclude => 1410,
            Self::ParameterOrder => 1411,
            Self::BadResolveReferences => 1412,
            Self::BadDepth => 1413,
            Self::Internal => 1500,
            Self::Upstream => 1501,
        }
    }

    /// The standard message of spec §4.2 (3.2+ wording).
    pub fn message(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::NoData => "OK - no data for time range",
            Self::BadRequest => "Bad request - user input error",
            Self::UnknownApiParameter => "Bad request - unknown API parameter name",
            Self::BadStart => "Bad request - syntax error in start time",
            Self::BadStop => "Bad request - syntax error in stop time",
            Self::StartNotBeforeStop => "Bad request - start equal to or after stop",
            Self::OutsideRange => "Bad request - start < startDate and/or stop > stopDate",
            Self::UnknownDataset => "Bad request - unknown dataset id",
            Self::UnknownParameter => "Bad request - unknown dataset parameter",
            Self::TooMuchData => "Bad request - too much time or data requested",
            Self::BadFormat => "Bad request - unsupported output format",
            Self::BadInclude => "Bad request - unsupported include value",
            Self::ParameterOrder => "Bad request - out-of-order or duplicate parameters",
            Self::BadResolveReferences => "Bad request - unsupported resolve_references value",
            Self::BadDepth => "Bad request - unsupported depth value",
            Self::Internal => "Internal server error",
            Self::Upstream => "Internal server error - upstream request error",
        }
    }

    /// The HTTP status that goes with the code: 1406 and 1407 are 404, other 14xx
    /// are 400, 15xx are 500 (spec §4.2 table; §5.2's "1401 with 404" contradicts it).
    pub fn http_status(self) -> u16 {
        match self {
            Self::Ok | Self::NoData => 200,
            Self::UnknownDataset | Self::UnknownParameter => 404,
            Self::BadRequest
            | Self::UnknownApiParameter
            | Self::BadStart
            | Self::BadStop
            | Self::StartNotBeforeStop
            | Self::OutsideRange
            | Self::TooMuchData
            | Self::BadFormat
            | Self::BadInclude
            | Self::ParameterOrder
            | Self::BadResolveReferences
            | Self::BadDepth => 400,
            Self::Internal | Self::Upstream => 500,
        }
    }

    /// The code for a number, if it is one of HAPI's.
    pub fn from_code(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }
}

impl fmt::Display for HapiStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code(), self.message())
    }
}

/// A HAPI status with an optional detail that says which rule failed.
///
/// Details never quote user input (spec §5.2 asks servers not to echo it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusError {
    /// The code.
    pub status: HapiStatus,
    /// What exactly went wrong, without echoing the request.
    pub detail: Option<String>,
}

impl StatusError {
    /// An error with the standard message only.
    pub fn new(status: HapiStatus) -> Self {
        Self { status, detail: None }
    }

    /// An error with a detail appended to the standard message.
    pub fn with(status: HapiStatus, detail: impl Into<String>) -> Self {
        Self { status, detail: Some(detail.into()) }
    }

    /// The `status.message` of the JSON body: `HAPI error 1406: Bad request - unknown dataset id`
    /// plus the detail (REQ-029: the verifier looks for the `HAPI error <code>` prefix).
    pub fn message(&self) -> String {
        match &self.detail {
            Some(d) => format!("HAPI error {}: {}: {d}", self.status.code(), self.status.message()),
            None => format!("HAPI error {}: {}", self.status.code(), self.status.message()),
        }
    }
}

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for StatusError {}

impl From<HapiStatus> for StatusError {
    fn from(status: HapiStatus) -> Self {
        Self::new(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_the_http_class_of_its_hundred() {
        for s in HapiStatus::ALL {
            let class = match s.code() / 100 {
                12 => 2,
                14 => 4,
                15 => 5,
                other => panic!("unexpected code family {other}"),
            };
            assert_eq!(s.http_status() / 100, class, "{s}");
            assert_eq!(HapiStatus::from_code(s.code()), Some(s));
        }
    }

    #[test]
    fn table_matches_spec_appendix() {
        let expected = [
            (1200, 200),
            (1201, 200),
            (1400, 400),
            (1401, 400),
            (1402, 400),
            (1403, 400),
            (1404, 400),
            (1405, 400),
            (1406, 404),
            (1407, 404),
            (1408, 400),
            (1409, 400),
            (1410, 400),
            (1411, 400),
            (1412, 400),
            (1413, 400),
            (1500, 500),
            (1501, 500),
        ];
        let got: Vec<_> = HapiStatus::ALL.iter().map(|s| (s.code(), s.http_status())).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn message_has_verifier_prefix_and_detail() {
        let e = StatusError::with(
            HapiStatus::OutsideRange,
            "dataset covers 2016-01-01T00:00Z to 2016-02-01T00:00Z",
        );
        assert_eq!(
            e.message(),
            "HAPI error 1405: Bad request - start < startDate and/or stop > stopDate: dataset covers 2016-01-01T00:00Z to 2016-02-01T00:00Z"
        );
        assert_eq!(
            StatusError::new(HapiStatus::UnknownDataset).message(),
            "HAPI error 1406: Bad request - unknown dataset id"
        );
    }
}
