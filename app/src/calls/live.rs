//! Live updates: which organizations' calls and reminders just changed. Writers in this process
//! notify the hub after they commit; the live feed (`/api/live`) wakes on it and reads what
//! changed for its own organization from the database, so a change made by another instance
//! still arrives (the feed also looks every second) and nothing crosses organizations (the
//! hub carries only an organization id; the rows are read with the viewer's).

use tokio::sync::broadcast;

/// How long the live feed waits between looks when nothing in this process woke it.
pub const POLL: std::time::Duration = std::time::Duration::from_millis(900);

#[derive(Debug, Clone)]
pub struct Hub {
    sender: broadcast::Sender<i64>,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(1024);
        Self { sender }
    }

    /// Says that something of organization `org_id` changed (committed).
    pub fn notify(&self, org_id: i64) {
        // No listener is fine: nobody is looking.
        let _ = self.sender.send(org_id);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<i64> {
        self.sender.subscribe()
    }
}
