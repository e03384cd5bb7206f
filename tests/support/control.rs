//! The emulator's own control routes (`/__emulator/*`): request counters, the clock and fault
//! injection, which tests use to observe and steer the service.

use crate::support::emulator::Emulator;
use crate::support::http::http;
use serde_json::Value;

impl Emulator {
    /// `/__emulator/stats`.
    pub async fn stats(&self) -> Value {
        http()
            .get(self.url("/__emulator/stats"))
            .send()
            .await
            .expect("stats")
            .json()
            .await
            .expect("stats json")
    }

    /// Request count of one route in the stats.
    pub async fn count(&self, route: &str) -> u64 {
        self.stats().await["requests"][route].as_u64().unwrap_or(0)
    }

    /// Zeroes the request counters.
    pub async fn reset_stats(&self) {
        let r = http()
            .post(self.url("/__emulator/reset-stats"))
            .send()
            .await
            .expect("reset-stats");
        assert_eq!(r.status(), 200);
    }

    /// Moves the emulator clock forward.
    pub async fn advance_clock(&self, secs: u64) {
        let r = http()
            .post(self.url(&format!("/__emulator/clock?advance={secs}")))
            .send()
            .await
            .expect("clock");
        assert_eq!(r.status(), 200);
    }

    /// Replaces the fault settings (omitted knobs go back to zero): status and echoed body.
    pub async fn put_faults(&self, body: &Value) -> (u16, Value) {
        let r = http()
            .put(self.url("/__emulator/faults"))
            .json(body)
            .send()
            .await
            .expect("PUT faults");
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }
}
