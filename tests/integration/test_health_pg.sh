#!/bin/bash
# test_health_pg.sh - test_health.sh with health-service on PostgreSQL
TEST_DB=postgres exec "$(dirname "$0")/test_health.sh"
