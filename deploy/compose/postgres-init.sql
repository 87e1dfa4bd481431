-- postgres-init.sql - run once by the postgres image's entrypoint, when it
-- makes the cluster in the empty postgres-data volume (mounted as
-- /docker-entrypoint-initdb.d/10-roles.sql): one role and one database per
-- service, each role owning its database and nothing more (no superuser:
-- the migrations need CREATE on their own database only; citext is a
-- trusted extension). The passwords come from the compose secrets through
-- psql's backquote expansion: they are in no file of the tree or the image
-- and in no process's arguments. A later change to these secrets does not
-- reach an existing cluster (ALTER ROLE ... PASSWORD, see README "Docker").
\set ON_ERROR_STOP on
\set pw `cat /run/secrets/warmup_db_password`
CREATE ROLE warmup LOGIN PASSWORD :'pw';
CREATE DATABASE warmup OWNER warmup;
\set pw `cat /run/secrets/health_db_password`
CREATE ROLE health LOGIN PASSWORD :'pw';
CREATE DATABASE health OWNER health;
\unset pw
