-- PostgreSQL only: a trigger that NOTIFYs every node's courier worker when mail is queued
-- (see migrations/postgres/0009_courier_wake.sql). A SQLite database belongs to one process,
-- whose worker is woken in memory, so there is nothing to do here.
SELECT 1;
