//! Plain HTTP/1.1 and the timing proxy: the test kit's, shared with the
//! functions' tests.

pub(crate) use crtask_testkit::aws::http::*;
