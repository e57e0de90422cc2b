//! Timer trigger payload. Docs: <https://learn.microsoft.com/azure/azure-functions/functions-bindings-timer>.
//! `ScheduleStatus` is `null` until the schedule monitor has state; both forms parse.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::lenient;
use super::{InvokeRequest, PayloadError};

#[derive(Debug, Default, Clone, PartialEq)]
pub struct TimerInfo {
    pub is_past_due: bool,
    pub last: Option<DateTime<Utc>>,
    pub next: Option<DateTime<Utc>>,
    pub adjust_for_dst: Option<bool>,
}

impl TimerInfo {
    pub fn from_invocation(request: &InvokeRequest, binding: &str) -> Result<Self, PayloadError> {
        let raw = request.data.get(binding).ok_or_else(|| PayloadError::MissingBinding(binding.into()))?;
        let Value::Object(timer) = lenient::unwrap_json(raw.clone()) else {
            return Err(PayloadError::invalid(format!("Data.{binding}"), "expected a timer object"));
        };
        let status = timer.get("ScheduleStatus").map(|v| lenient::unwrap_json(v.clone()));
        let status_field = |key: &str| status.as_ref().and_then(|s| s.get(key)).and_then(lenient::timestamp);
        Ok(Self {
            is_past_due: timer.get("IsPastDue").and_then(lenient::bool).unwrap_or(false),
            last: status_field("Last"),
            next: status_field("Next"),
            adjust_for_dst: timer.get("Schedule").and_then(|s| s.get("AdjustForDST")).and_then(lenient::bool),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::payload::fixtures;

    #[test]
    fn captured_timer_payload_with_null_status() {
        let request = fixtures::load("timer.json");
        let timer = TimerInfo::from_invocation(&request, "timer").unwrap();
        assert_eq!(timer, TimerInfo { is_past_due: false, last: None, next: None, adjust_for_dst: Some(true) });
        assert_eq!(request.sys().unwrap().utc_now.as_deref(), Some("2023-09-07T11:40:45.004275Z"));
    }

    #[test]
    fn populated_schedule_status() {
        let request = fixtures::load("timer-past-due.json");
        let timer = TimerInfo::from_invocation(&request, "timer").unwrap();
        assert!(timer.is_past_due);
        assert_eq!(timer.next.unwrap().to_rfc3339(), "2025-03-03T14:31:00+00:00");
        assert_eq!(timer.last.unwrap().to_rfc3339(), "2025-03-03T14:30:00+00:00");
    }
}
