#!/usr/bin/env bash
# Build launchplane-runner-maintainer_<version>_<arch>.deb and launchplane-evidence_<version>_<arch>.deb
# (the fleet evidence service) in a throwaway Debian 12 container (tests/sandbox/sandbox.sh), from a clean copy of the source, then lintian it.
#
# Usage (as root, from anywhere in the repository):
#   packaging/build-deb.sh [--version V] [--source head|worktree] [--out DIR] [--machine NAME]
#   packaging/build-deb.sh source-id [--source head|worktree]
#   packaging/build-deb.sh wheels REQUIREMENTS [-- PIP-ARGS...]
#
#   --version V   Debian version (default: pyproject's version, which must be the top of
#                 packaging/debian/changelog); another one (e.g. 0.1.0+2, for an upgrade
#                 test) gets a changelog entry in the build copy only
#   --source      head (default): `git archive HEAD`, so uncommitted files never enter the
#                 package; worktree: tracked and untracked-but-not-ignored files as they
#                 are now (development only)
#   --out DIR     where the .deb goes (default: dist/); next to it <deb>.source (what it
#                 was built from, see source-id) and <deb>.lintian (lintian's findings)
#   --machine     sandbox machine name (default lp-build)
#
#   source-id     print the id of what --source would build from: the HEAD commit, or
#                 worktree-<sha256 over the file list and contents>
#   wheels REQ [-- PIP-ARGS]
#                 wheels for the container's Python 3.11 (sandbox.sh prepare-wheels),
#                 cached by REQ's content; prints the directory (tests use it too)
#
# Environment: UV (the uv binary, default: uv on PATH), LP_DEB_WHEEL_CACHE (dependency
# wheels, keyed by the exported requirements; default /var/cache/launchplane-deb).
#
# Steps: source copy -> `uv export --frozen --no-dev --no-emit-project --no-hashes` and
# `uv build --wheel` on the host -> dependency wheels via `sandbox.sh prepare-wheels`
# (cached) -> boot the container with the build directory bound at /build ->
# `dpkg-buildpackage -b` (debian/rules builds the venv at its final path, offline, with
# Debian's Python 3.11) -> `lintian --fail-on error,warning` -> copy out -> down.
set -euo pipefail

PKG=launchplane-runner-maintainer
# Every binary package of the source: each gets its .deb, .source stamp and .lintian in --out.
PACKAGES=(launchplane-runner-maintainer launchplane-evidence)
REPO=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
SANDBOX=$REPO/tests/sandbox/sandbox.sh
UV=${UV:-uv}
WHEEL_CACHE=${LP_DEB_WHEEL_CACHE:-/var/cache/launchplane-deb}

log() { printf 'build-deb: %s\n' "$*" >&2; }
die() {
    printf 'build-deb: error: %s\n' "$*" >&2
    exit 1
}
now_ms() { date +%s%3N; }

# ---------------------------------------------------------------- source

source_id() {
    local mode=$1
    case $mode in
        head) git -C "$REPO" rev-parse HEAD ;;
        worktree)
            printf 'worktree-%s\n' "$(
                cd "$REPO"
                git ls-files -z --cached --others --exclude-standard \
                    | sort -z -u \
                    | while IFS= read -r -d '' f; do
                        [[ -f $f && ! -L $f ]] || { [[ -L $f ]] && printf 'L %s %s\n' "$f" "$(readlink "$f")"; continue; }
                        printf 'F %s %s %s\n' "$f" "$(stat -c %a "$f")" "$(sha256sum <"$f" | cut -c1-64)"
                    done | sha256sum | cut -c1-64
            )"
            ;;
        *) die "--source must be head or worktree, not '$mode'" ;;
    esac
}

export_source() {
    local mode=$1 dest=$2
    mkdir -p "$dest"
    case $mode in
        head)
            if [[ -n $(git -C "$REPO" status --porcelain --untracked-files=normal) ]]; then
                log "note: building HEAD $(git -C "$REPO" rev-parse --short HEAD); uncommitted" \
                    "changes are not included (--source worktree / DEB_SOURCE=worktree includes them)"
            fi
            git -C "$REPO" archive --format=tar HEAD | tar -x -C "$dest"
            ;;
        worktree)
            log "building the WORKING TREE (development build, not from a commit)"
            (cd "$REPO" && git ls-files -z --cached --others --exclude-standard \
                | sort -z -u \
                | while IFS= read -r -d '' f; do
                    if [[ -e $f || -L $f ]]; then printf '%s\0' "$f"; fi
                done \
                | tar --null --no-recursion -T - -c -f -) | tar -x -C "$dest"
            ;;
    esac
}

pyproject_version() {
    python3 - "$1/pyproject.toml" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    print(tomllib.load(f)["project"]["version"])
PY
}

# Make debian/changelog's top entry VERSION (in the build copy only).
set_changelog_version() {
    local src=$1 version=$2 top date
    top=$(sed -n '1s/^[^ ]* (\([^)]*\)).*/\1/p' "$src/debian/changelog")
    [[ $top == "$version" ]] && return 0
    date=$(sed -n 's/^ -- .*>  \(.*\)$/\1/p' "$src/debian/changelog" | head -n1)
    # One second after the entry it rebuilds: a newer date (lintian), still deterministic.
    date=$(LC_ALL=C date -u -R -d "@$(($(date -d "$date" +%s) + 1))")
    {
        printf '%s (%s) bookworm; urgency=medium\n\n' "$PKG" "$version"
        printf '  * Build %s of %s (make deb DEB_VERSION=%s).\n\n' "$version" "$top" "$version"
        printf ' -- Launchplane Maintainers <maintainers@launchplane.example.org>  %s\n\n' "$date"
        cat "$src/debian/changelog"
    } >"$src/debian/changelog.new"
    mv "$src/debian/changelog.new" "$src/debian/changelog"
}

# A CPython 3.11 with pip for prepare-wheels: Debian's own when it has pip, else a venv of it.
pip_python() {
    if /usr/bin/python3 -m pip --version >/dev/null 2>&1; then
        echo /usr/bin/python3
        return 0
    fi
    local venv=$WHEEL_CACHE/pip-python
    if [[ ! -x $venv/bin/python ]]; then
        log "creating $venv (a pip for prepare-wheels)"
        /usr/bin/python3 -m venv "$venv" >&2
    fi
    echo "$venv/bin/python"
}

# Wheels for the container's CPython 3.11 (sandbox.sh prepare-wheels), cached under
# $WHEEL_CACHE by the requirements and pip arguments; prints the directory, which also
# holds a copy of the requirements as requirements.txt.
cached_wheels() {
    local req=$1 key dir
    shift
    # Pip arguments naming files (constraints) count by their content, not their path.
    key=$({
        grep -v '^ *#' "$req"
        for arg; do
            if [[ -f $arg ]]; then grep -v '^ *#' "$arg"; else printf '%s\n' "$arg"; fi
        done
    } | sha256sum | cut -c1-16)
    dir=$WHEEL_CACHE/wheels-$key
    mkdir -p "$WHEEL_CACHE"
    exec 7>"$WHEEL_CACHE/.lock"
    flock -w 900 7 || die "timed out waiting for $WHEEL_CACHE/.lock"
    if [[ ! -d $dir ]]; then
        rm -rf "$dir.tmp"
        LP_SANDBOX_PIP_PYTHON=$(pip_python) bash "$SANDBOX" prepare-wheels "$req" "$dir.tmp" \
            -- "$@" >&2
        cp "$req" "$dir.tmp/requirements.txt"
        mv -T "$dir.tmp" "$dir"
    fi
    # Used now; caches unused for a week (older lock files, older emulator pins) go.
    touch "$dir"
    find "$WHEEL_CACHE" -mindepth 1 -maxdepth 1 -name 'wheels-*' -mtime +7 \
        -exec rm -rf --one-file-system {} +
    exec 7>&-
    printf '%s\n' "$dir"
}

# ---------------------------------------------------------------- build

cmd_build() {
    local version="" mode=head out=$REPO/dist machine=lp-build
    while (($#)); do
        case $1 in
            --version) version=${2:?}; shift 2 ;;
            --source) mode=${2:?}; shift 2 ;;
            --out) out=${2:?}; shift 2 ;;
            --machine) machine=${2:?}; shift 2 ;;
            *) die "unknown option '$1'" ;;
        esac
    done
    [[ $(id -u) -eq 0 ]] || die "must run as root (the sandbox needs it)"
    command -v "$UV" >/dev/null || die "uv not found (UV=...)"
    local t0 sid base tmp src req evreq whl key deps deb arch p
    local -a debs=()
    t0=$(now_ms)
    sid=$(source_id "$mode")

    # One build per machine name at a time; a machine still up under the lock is stale.
    mkdir -p /run/lock
    exec 8>"/run/lock/launchplane-build-deb-$machine.lock"
    flock -w 900 8 || die "another build on machine '$machine' holds the lock"
    if bash "$SANDBOX" status "$machine" >/dev/null 2>&1; then
        log "machine '$machine' left running by an earlier build: taking it down"
        bash "$SANDBOX" down "$machine" >&2
    fi

    tmp=$(mktemp -d /var/tmp/lp-build-deb.XXXXXX)
    chmod 0755 "$tmp" # lintian runs as nobody
    # shellcheck disable=SC2064
    trap "bash '$SANDBOX' down '$machine' >/dev/null 2>&1 || true; rm -rf --one-file-system '$tmp'" EXIT
    trap 'exit 130' INT TERM HUP
    src=$tmp/src
    export_source "$mode" "$src"
    [[ -d $src/packaging/debian ]] || die "no packaging/debian in the $mode source (not committed yet? DEB_SOURCE=worktree)"
    base=$(pyproject_version "$src")
    version=${version:-$base}
    [[ $version =~ ^[0-9][A-Za-z0-9.+~]*$ ]] || die "'$version' is not a native Debian version"
    cp -a "$src/packaging/debian" "$src/debian"
    local top
    top=$(sed -n '1s/^[^ ]* (\([^)]*\)).*/\1/p' "$src/debian/changelog")
    [[ $top == "$base" ]] \
        || die "packaging/debian/changelog is at $top but pyproject.toml at $base: add a changelog entry"
    set_changelog_version "$src" "$version"
    log "source $sid ($mode), version $version"

    # Host side: the pinned runtime requirements and the project wheel.
    mkdir -p "$tmp/wheels"
    req=$tmp/wheels/requirements.txt
    (cd "$src" && "$UV" export --frozen --no-dev --no-emit-project --no-hashes --quiet -o "$req")
    # The evidence service's venv: the same runtime plus its own dependency group.
    evreq=$tmp/wheels/evidence-requirements.txt
    (cd "$src" && "$UV" export --frozen --no-dev --group evidence --no-emit-project --no-hashes \
        --quiet -o "$evreq")
    (cd "$src" && "$UV" build --wheel --quiet --out-dir "$tmp/project" .) >&2
    whl=$(find "$tmp/project" -name "${PKG//-/_}-*.whl" | head -n1)
    [[ -n $whl ]] || die "uv build produced no wheel"
    cp "$whl" "$tmp/wheels/"

    # Dependency wheels for the container's CPython 3.11, cached by the requirements.
    deps=$(cached_wheels "$req")
    cp "$deps"/*.whl "$tmp/wheels/"
    deps=$(cached_wheels "$evreq")
    cp -n "$deps"/*.whl "$tmp/wheels/"
    log "host side ready in $(($(now_ms) - t0)) ms ($(find "$tmp/wheels" -name '*.whl' | wc -l) wheels)"

    bash "$SANDBOX" prepare >/dev/null
    bash "$SANDBOX" up "$machine" --bind "$tmp:/build" >&2
    local rc=0
    bash "$SANDBOX" exec "$machine" --cwd /build/src --env LP_WHEELS=/build/wheels \
        -- dpkg-buildpackage -b -us -uc >"$tmp/build.log" 2>&1 || rc=$?
    mkdir -p "$out"
    cp "$tmp/build.log" "$out/build-deb.log"
    if ((rc)); then
        tail -n 60 "$tmp/build.log" >&2
        die "dpkg-buildpackage failed ($rc); the whole log is in $out/build-deb.log"
    fi
    for p in "${PACKAGES[@]}"; do
        deb=$(find "$tmp" -maxdepth 1 -name "${p}_${version}_*.deb" -printf '%f\n' | head -n1)
        [[ -n $deb ]] || die "no .deb produced for $p"
        debs+=("$deb")
    done
    log "built ${debs[*]} in $(($(now_ms) - t0)) ms; lintian"
    rc=0
    # As an unprivileged user (lintian warns about root). Every error or warning fails the
    # build; info tags and overridden tags (each justified in packaging/README.md) are shown.
    # (Counted here rather than by --fail-on: with --show-overrides lintian 2.116 counts
    # overridden warnings as failures too.)
    bash "$SANDBOX" exec "$machine" --cwd /build --env HOME=/tmp -- \
        runuser -u nobody -- lintian --fail-on none --display-info --show-overrides \
        "${debs[@]}" >"$tmp/lintian.txt" 2>&1 || rc=$?
    cp "$tmp/lintian.txt" "$out/build-deb.lintian"
    cat "$tmp/lintian.txt" >&2
    if ((rc)) || grep -q '^[EW]: ' "$tmp/lintian.txt"; then
        mkdir -p "$out/rejected"
        for deb in "${debs[@]}"; do cp "$tmp/$deb" "$out/rejected/"; done
        die "lintian: errors or warnings (or lintian failed, exit $rc): fix each or justify" \
            "an override; the packages are in $out/rejected/ for inspection"
    fi
    log "lintian: $(grep -c '^E: ' "$tmp/lintian.txt") errors, $(grep -c '^W: ' "$tmp/lintian.txt")" \
        "warnings, $(grep -c '^I: ' "$tmp/lintian.txt") info, $(grep -c '^O: ' "$tmp/lintian.txt") overridden"
    bash "$SANDBOX" down "$machine" >&2

    for deb in "${debs[@]}"; do
        p=${deb%%_*}
        arch=${deb##*_}
        arch=${arch%.deb}
        rm -f "$out/${p}_${version}_$arch.deb"{,.source,.lintian} "$out/rejected/$deb"
        cp "$tmp/$deb" "$out/$deb"
        printf '%s\n' "$sid" >"$out/$deb.source"
        # Each package's own findings (lintian prefixes every tag with the package name).
        grep -E "^[A-Z]: $p( |:)" "$tmp/lintian.txt" >"$out/$deb.lintian" || true
        log "$out/$deb ($(du -h "$out/$deb" | cut -f1))"
    done
    rmdir "$out/rejected" 2>/dev/null || true
    log "done in $(($(now_ms) - t0)) ms"
    # The agent's package last: callers (tests/package/debs.py) read the last line.
    for ((i = ${#debs[@]} - 1; i >= 0; i--)); do printf '%s\n' "$out/${debs[i]}"; done
}

main() {
    if [[ ${1:-} == wheels ]]; then
        (($# >= 2)) || die "usage: wheels REQUIREMENTS [-- PIP-ARGS...]"
        local req=$2
        shift 2
        [[ ${1:-} == -- ]] && shift
        cached_wheels "$req" "$@"
        return 0
    fi
    if [[ ${1:-} == source-id ]]; then
        shift
        local mode=head
        [[ ${1:-} == --source ]] && mode=${2:?}
        source_id "$mode"
        return 0
    fi
    case ${1:-} in -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; return 0 ;; esac
    cmd_build "$@"
}

main "$@"
