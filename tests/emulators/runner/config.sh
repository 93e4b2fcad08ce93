#!/bin/bash
# actions/runner emulator: configure (or `remove`) this runner. Same flags and environment
# inputs (ACTIONS_RUNNER_INPUT_<NAME>) as the real config.sh; see bin/Runner.Listener.

user_id=$(id -u)

# like the real one: snapshot the environment of the configuring user, never as root
if [ "$user_id" -eq 0 ] && [ -z "$RUNNER_ALLOW_RUNASROOT" ]; then
    echo "Must not run with sudo"
    exit 1
fi

SOURCE="${BASH_SOURCE[0]}"
while [ -h "$SOURCE" ]; do
    DIR="$(cd -P "$(dirname "$SOURCE")" && pwd)"
    SOURCE="$(readlink "$SOURCE")"
    [[ $SOURCE != /* ]] && SOURCE="$DIR/$SOURCE"
done
DIR="$(cd -P "$(dirname "$SOURCE")" && pwd)"
cd "$DIR" || exit 1

source ./env.sh

PYTHON="${RUNNER_EMULATOR_PYTHON:-/usr/bin/python3}"
[ -x "$PYTHON" ] || PYTHON=python3

shopt -s nocasematch
if [[ "$1" == "remove" ]]; then
    exec "$PYTHON" -I ./bin/Runner.Listener "$@"
else
    exec "$PYTHON" -I ./bin/Runner.Listener configure "$@"
fi
