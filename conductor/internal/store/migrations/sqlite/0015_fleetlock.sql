-- ferric:expand
-- Reboot coordination (issue 18): FleetLock's counting semaphore, one per reboot group. A group row holds the
-- operator's slot override (NULL: --fleetlock-slots) and the salted hash of its basic-auth secret ('' = none);
-- acquirers lock the row, so holders never outnumber slots, whichever conductor answers. New tables only.
CREATE TABLE IF NOT EXISTS fleetlock_groups (
    name TEXT PRIMARY KEY,
    slots INTEGER,
    secret_hash TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
-- One row per client holding a reboot slot of its group: the key makes a second acquire by the same id a no-op.
CREATE TABLE IF NOT EXISTS fleetlock_holders (
    group_name TEXT NOT NULL REFERENCES fleetlock_groups (name),
    holder_id TEXT NOT NULL,
    acquired_at TEXT NOT NULL,
    PRIMARY KEY (group_name, holder_id)
);
