#!/bin/bash
# test_history_pg.sh - test_history.sh with warmup-service on PostgreSQL (/history, archival and the
# drop of archived months' partitions)
TEST_DB=postgres exec "$(dirname "$0")/test_history.sh"
