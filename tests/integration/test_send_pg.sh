#!/bin/bash
# test_send_pg.sh - test_send.sh with warmup-service on PostgreSQL (broadcasts)
TEST_DB=postgres exec "$(dirname "$0")/test_send.sh"
