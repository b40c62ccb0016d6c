//! An event's renderings, derived from its variant: the `event` name and fields (`serde`,
//! `tag = "event"`), and the journal record.

use std::time::SystemTime;

use serde_json::{Map, Value};

use crate::report::event::Event;
use crate::report::journal::{Level, Record};

impl Event {
    /// The `event` name, the same in every rendering: the variant's, in snake case.
    pub fn name(&self) -> String {
        match serde_json::to_value(self) {
            Ok(Value::Object(mut map)) => match map.remove("event") {
                Some(Value::String(name)) => name,
                _ => String::new(),
            },
            _ => String::new(),
        }
    }

    /// The structured fields, beside `event`, in every rendering: the variant's own, as
    /// its `serde` attributes render them; `None` values are left out.
    pub fn fields(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(mut map)) => {
                map.remove("event");
                map.retain(|_, v| !v.is_null());
                map
            }
            _ => Map::new(),
        }
    }

    /// Whether the journal (and with it `/history` and Datadog) keeps it: every decision
    /// told at INFO or above. The log line tells everything.
    pub fn journaled(&self) -> bool {
        let beside = matches!(
            self,
            Event::Notice(_) | Event::Standby(_) | Event::Command(_) | Event::Steps(_)
        );
        !beside && self.level() != Level::Debug
    }

    /// The journal record (also what `/history` and Datadog carry).
    pub fn record(&self, at: SystemTime) -> Record {
        let mut record = Record::new(at, self.level(), &self.name(), self.message());
        record.fields = self.fields();
        record
    }
}
