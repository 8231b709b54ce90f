-- SessionGrains on PostgreSQL, schema version 2: the session event log (Grains/Events/PostgresSessionEventLog.cs).
-- Applied by PostgresSchema.MigrateAsync after version 1, in the same transaction and under the same lock.
-- One row per event, scoped by service id as Orleans' tables are, so clusters can share a database. The position is
-- the event's place in the log: an identity, handed out in commit order because every append holds an advisory lock
-- until it commits (see the class). Kinds, end reasons and signals are the .NET enums' numbers, which are fixed.

CREATE TABLE sessiongrains_events
(
    service_id varchar(150) NOT NULL,
    position bigint GENERATED ALWAYS AS IDENTITY,
    at timestamptz NOT NULL,
    kind smallint NOT NULL,
    user_id text NOT NULL,
    session_id text NOT NULL,
    previous_session_id text NULL,
    end_reason smallint NULL,
    signals integer NOT NULL DEFAULT 0,
    -- Every query names the service and ranges over positions: reads after a position, the end, and the trim.
    PRIMARY KEY (service_id, position)
);
