#!/bin/bash
# actions/runner emulator: run the listener in the foreground until it ends or is told to stop.
# It never daemonizes. SIGTERM/SIGINT are passed on to the listener, which closes its session
# (the runner goes offline at once); run.sh then exits 0, as systemd expects of a clean stop.
# Like the real run.sh, a listener exit code 2 (retryable) or 3 (updating) relaunches it.

SOURCE="${BASH_SOURCE[0]}"
while [ -h "$SOURCE" ]; do
    DIR="$(cd -P "$(dirname "$SOURCE")" && pwd)"
    SOURCE="$(readlink "$SOURCE")"
    [[ $SOURCE != /* ]] && SOURCE="$DIR/$SOURCE"
done
DIR="$(cd -P "$(dirname "$SOURCE")" && pwd)"

child=0
signaled=0
forward() {
    signaled=1
    if [ "$child" -ne 0 ]; then
        kill -TERM "$child" 2>/dev/null
    fi
}
trap forward TERM INT

while :; do
    cp -f "$DIR"/run-helper.sh.template "$DIR"/run-helper.sh
    "$DIR"/run-helper.sh "$@" &
    child=$!
    wait "$child"
    returnCode=$?
    while kill -0 "$child" 2>/dev/null; do
        wait "$child"
        returnCode=$?
    done
    child=0
    if [ "$signaled" -eq 1 ]; then
        echo "Exiting runner..."
        exit 0
    fi
    if [ "$returnCode" -eq 2 ]; then
        echo "Restarting runner..."
    else
        echo "Exiting runner..."
        exit 0
    fi
done
