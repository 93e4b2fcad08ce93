#!/bin/bash
# actions/runner emulator: sleep that works without coreutils' fractional sleep guarantees.
SECONDS=0
while [[ $SECONDS != $1 ]] && [[ $SECONDS -lt $1 ]]; do
    sleep 0.1
done
