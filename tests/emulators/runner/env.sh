#!/bin/bash
# actions/runner emulator: record the configuring user's PATH and a few variables for the
# listener, as the real env.sh does (.path and .env next to config.sh).

varCheckList=(
    'LANG'
    'JAVA_HOME'
    'ANT_HOME'
    'M2_HOME'
    'ANDROID_HOME'
    'GRADLE_HOME'
    'NVM_BIN'
    'NVM_PATH'
    'LD_LIBRARY_PATH'
    'PERL5LIB'
    'AGENT_TOOLSDIRECTORY'
)

envContents=""
if [ -f ".env" ]; then
    envContents=$(cat .env)
else
    touch .env
fi

for varName in "${varCheckList[@]}"; do
    if [[ "$envContents" == *"${varName}="* ]]; then
        continue
    fi
    if [ -n "${!varName}" ]; then
        echo "${varName}=${!varName}" >> .env
    fi
done

echo "$PATH" > .path
