#!/bin/bash
# test_campaigns_pg.sh - test_campaigns.sh with warmup-service on PostgreSQL (campaigns: attribute, domain and list audiences)
TEST_DB=postgres exec "$(dirname "$0")/test_campaigns.sh"
