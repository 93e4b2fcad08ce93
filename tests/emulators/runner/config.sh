#!/bin/bash
# actions/runner emulator: configure (or `remove`) this runner. Same flags and environment
# inputs (ACTIONS_RUNNER_INPUT_<NAME>) as the real config.sh; see bin/Runner.Listener.

user_id=$(id -u)

# like the real one: snapshot the environment of the configuring user, never as root
if [ "$user_id" -eq 0 ] && [ -z "$RUNNER_ALLOW_RUNASROOT" ]; then
    echo "Must not run with sudo"
    exit 1
fi

# Like the real config.sh on Linux (its .NET dependency check), only when
# RUNNER_EMULATOR_CHECK_DEPENDENCIES=1: ldd and ldconfig must exist and ldconfig must know a
# libicu. (The real one also runs ldd on bin/*.so, which the emulator does not have.)
if [[ "$RUNNER_EMULATOR_CHECK_DEPENDENCIES" == "1" && "$(uname)" == "Linux" ]]; then
    message="Execute sudo ./bin/installdependencies.sh to install any missing Dotnet Core 6.0 dependencies."
    if ! command -v ldd > /dev/null; then
        echo "Can not find 'ldd'. Please install 'ldd' and try again."
        exit 1
    fi
    LDCONFIG_COMMAND=$(command -v ldconfig)
    if [ -z "$LDCONFIG_COMMAND" ]; then
        LDCONFIG_COMMAND=/sbin/ldconfig
        if ! [ -x "$LDCONFIG_COMMAND" ]; then
            echo "Can not find 'ldconfig' in PATH and '/sbin/ldconfig' doesn't exists either. Please install 'ldconfig' and try again."
            exit 1
        fi
    fi
    libpath=${LD_LIBRARY_PATH:-}
    if ! "$LDCONFIG_COMMAND" -NXv ${libpath//:/ } 2>&1 | grep libicu > /dev/null 2>&1; then
        echo "Libicu's dependencies is missing for Dotnet Core 6.0"
        echo "$message"
        exit 1
    fi
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
