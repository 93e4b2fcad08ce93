#!/bin/bash
# actions/runner emulator: what systemd's ExecStart= runs. Written from the documented behaviour
# of the real src/Misc/layoutroot/run.sh (actions/runner 2.336.0); see docs/github.md:
# - run-helper.sh (a fresh copy of run-helper.sh.template) runs in the foreground, once per
#   launch; its exit code 2 relaunches it, 7 is passed on only with
#   ACTIONS_RUNNER_RETURN_VERSION_DEPRECATED_EXIT_CODE=1, anything else ends run.sh with 0.
# - Without RUNNER_MANUALLY_TRAP_SIG there is NO signal handling here: a SIGTERM to run.sh alone
#   ends run.sh at once and the listener never hears of it.
# - With RUNNER_MANUALLY_TRAP_SIG set, the helper runs in its own process group (job control);
#   SIGTERM/SIGINT to run.sh become a SIGINT to that whole group, run.sh waits for the helper
#   and exits with the status its interrupted wait returned (143 for TERM, 130 for INT).

SOURCE="${BASH_SOURCE[0]}"
while [ -h "$SOURCE" ]; do
    DIR="$(cd -P "$(dirname "$SOURCE")" && pwd)"
    SOURCE="$(readlink "$SOURCE")"
    [[ $SOURCE != /* ]] && SOURCE="$DIR/$SOURCE"
done
DIR="$(cd -P "$(dirname "$SOURCE")" && pwd)"

fresh_helper() {
    cp -f "$DIR"/run-helper.sh.template "$DIR"/run-helper.sh
}

# Returns 0 to relaunch; otherwise sets `status`, what run.sh ends with (the helper's code
# is kept only in the trapped mode, as the real script does).
decide() {
    local code=$1
    if [[ $code -eq 2 ]]; then
        echo "Restarting runner..."
        return 0
    fi
    echo "Exiting runner..."
    if [[ "$ACTIONS_RUNNER_RETURN_VERSION_DEPRECATED_EXIT_CODE" == "1" && $code -eq 7 ]]; then
        status=7
    else
        status=${2:-0}
    fi
    return 1
}

plain() {
    while :; do
        fresh_helper
        "$DIR"/run-helper.sh "$@"
        decide $? || exit "$status"
    done
}

trapped() {
    set -m
    helper=0
    trap '[ "$helper" -ne 0 ] && kill -INT -- "-$helper"' INT TERM
    while :; do
        fresh_helper
        "$DIR"/run-helper.sh "$@" &
        helper=$!
        wait "$helper"
        code=$?
        decide "$code" "$code" && continue
        trap - INT TERM
        wait "$helper"  # let the helper and its listener finish their last words
        exit "$status"
    done
}

if [[ -z "$RUNNER_MANUALLY_TRAP_SIG" ]]; then
    plain "$@"
else
    trapped "$@"
fi
