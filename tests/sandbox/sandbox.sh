#!/usr/bin/env bash
# Throwaway Debian 12 container with a real systemd (PID 1) and a real system
# D-Bus, for the "real systemd" and "package" test tiers.
#
# Usage (as root):
#   sandbox.sh prepare                       install host tools, build/cache the rootfs
#   sandbox.sh rootfs                        print the cached rootfs path
#   sandbox.sh prepare-wheels REQ OUTDIR [-- PIP-ARGS...]
#                                            wheels for the container's python (offline use)
#   sandbox.sh up NAME [--bind-ro H:C]... [--bind H:C]... [--overlay H:C]...
#                      [--timeout SECONDS]  boot the container and wait for systemd
#   sandbox.sh exec NAME [--cwd DIR] [--env K=V]... -- CMD...
#                                            run CMD inside (exit code, stdin passed through)
#   sandbox.sh cp-in NAME HOSTPATH CONTDIR   copy a file/dir into CONTDIR inside
#   sandbox.sh cp-out NAME CONTPATH HOSTDIR  copy a file/dir out of the container
#   sandbox.sh status [NAME]                 show state (exit 0 only if NAME is running)
#   sandbox.sh down NAME [--timeout SECONDS] stop, clean up, verify nothing is left
#                                            (--timeout 0: SIGKILL at once, no SIGTERM)
#   sandbox.sh verify NAME                   only check that nothing of NAME is left
#   sandbox.sh clean                         remove all cached root file systems
#
# Environment:
#   LP_SANDBOX_CACHE    directory holding cached root file systems
#                       (default /var/cache/launchplane-sandbox)
#   LP_SANDBOX_STATE    state directory (default /run/launchplane-sandbox)
#   LP_SANDBOX_SOURCES  apt sources file given to mmdebstrap as MIRROR
#                       (default /etc/apt/sources.list.d/debian.sources)
#   LP_SANDBOX_ROOTFS   use this rootfs instead of the cached one (up only)
#   LP_SANDBOX_PIP_PYTHON  CPython 3.11 whose pip prepare-wheels uses (default python3)
#
# exec exits with the command's status, or 125 when the sandbox is not up.
#
# See docs/sandbox.md for how it works, what it costs and the pitfalls.
set -euo pipefail

readonly SCRIPT_VERSION=1
readonly SUITE=bookworm
# libicu72, libkrb5-3, libssl3, zlib1g: what actions/runner needs (the .deb's Depends); the
# agent's baseline refuses a host without them (runner_os_dependency_missing).
readonly INCLUDE="systemd,systemd-sysv,dbus,python3,python3-venv,procps,ca-certificates,\
debhelper,dpkg-dev,build-essential,lintian,fakeroot,libicu72,libkrb5-3,libssl3,zlib1g"
readonly MASK_UNITS="console-getty.service getty@tty1.service apt-daily.timer \
apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer dpkg-db-backup.timer"
readonly DPKG_EXCLUDES=(
    "path-exclude=/usr/share/man/*"
    "path-exclude=/usr/share/doc/*"
    "path-exclude=/usr/share/info/*"
    "path-exclude=/usr/share/locale/*"
)
readonly HOST_PACKAGES=(systemd-container mmdebstrap)
readonly CONTAINER_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
readonly CGROUP_PARENT=launchplane-sandbox

CACHE_ROOT=${LP_SANDBOX_CACHE:-/var/cache/launchplane-sandbox}
STATE_ROOT=${LP_SANDBOX_STATE:-/run/launchplane-sandbox}
SOURCES=${LP_SANDBOX_SOURCES:-/etc/apt/sources.list.d/debian.sources}

log() { printf 'sandbox: %s\n' "$*" >&2; }
die() {
    printf 'sandbox: error: %s\n' "$*" >&2
    exit 1
}

need_root() { [[ $(id -u) -eq 0 ]] || die "must run as root"; }

check_name() {
    [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9-]{0,62}$ ]] \
        || die "invalid machine name '$1' (letters, digits, '-', at most 63 characters)"
}

now_ms() { date +%s%3N; }

# ---------------------------------------------------------------- processes

# Start time (clock ticks since boot) of PID, or empty when it is gone or a zombie.
proc_start() {
    local stat rest
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    rest=${stat##*) }
    # shellcheck disable=SC2086
    set -- $rest
    [[ $1 == Z || $1 == X ]] && return 0
    printf '%s\n' "${20}"
}

# True when PID is alive and is the very process recorded with START.
same_proc() {
    local pid=$1 start=$2
    [[ -n $pid && -n $start ]] || return 1
    [[ $(proc_start "$pid") == "$start" ]]
}

# Children (all threads) of PID, one per line.
proc_children() {
    cat "/proc/$1"/task/*/children 2>/dev/null | tr ' ' '\n' | sed '/^$/d' || true
}

# Wait until PID/START is gone; at most SECONDS. Returns 1 on timeout.
wait_gone() {
    local pid=$1 start=$2 seconds=$3 deadline
    deadline=$(($(now_ms) + seconds * 1000))
    while same_proc "$pid" "$start"; do
        (($(now_ms) < deadline)) || return 1
        sleep 0.1
    done
}

# PIDs of systemd-nspawn processes started with machine name NAME.
nspawn_pids_for() {
    local name=$1 p cmd
    for p in /proc/[0-9]*; do
        [[ $(cat "$p/comm" 2>/dev/null) == systemd-nspawn ]] || continue
        cmd=$(tr '\0' '\n' <"$p/cmdline" 2>/dev/null) || continue
        if grep -qxF -e "--machine=$name" <<<"$cmd" \
            || grep -A1 -xF -e "-M" <<<"$cmd" | grep -qxF -e "$name"; then
            printf '%s\n' "${p#/proc/}"
        fi
    done
}

# ---------------------------------------------------------------- rootfs

# Shell code run by mmdebstrap on the finished tree ($1 is its root).
customize_hook() {
    # shellcheck disable=SC2016 # $1 is expanded later, by mmdebstrap's hook shell
    printf '%s' 'set -e; for u in '"$MASK_UNITS"'; do ln -sfn /dev/null "$1/etc/systemd/system/$u"; done'
    # The hostname must come from nspawn's -M, not from a copied /etc/hostname; the dpkg
    # path-excludes are for the cache only, not for packages that tests install; the host's
    # resolver is of no use behind --private-network (empty file: glibc uses loopback).
    # shellcheck disable=SC2016
    printf '%s' '; rm -f "$1/etc/hostname" "$1/etc/dpkg/dpkg.cfg.d/99mmdebstrap"' \
        '; : >"$1/etc/resolv.conf"'
}

cache_key() {
    {
        printf 'version=%s\nsuite=%s\ninclude=%s\nhook=%s\n' \
            "$SCRIPT_VERSION" "$SUITE" "$INCLUDE" "$(customize_hook)"
        printf 'dpkgopt=%s\n' "${DPKG_EXCLUDES[@]}"
        printf 'sources:\n'
        cat "$SOURCES"
    } | sha256sum | cut -c1-16
}

rootfs_path() {
    [[ -r $SOURCES ]] || die "apt sources file $SOURCES not readable (set LP_SANDBOX_SOURCES)"
    printf '%s/rootfs-%s\n' "$CACHE_ROOT" "$(cache_key)"
}

ensure_host_packages() {
    local missing=() pkg
    for pkg in "${HOST_PACKAGES[@]}"; do
        dpkg-query -W -f='${db:Status-Status}\n' "$pkg" 2>/dev/null | grep -qx installed \
            || missing+=("$pkg")
    done
    command -v nsenter >/dev/null || die "nsenter (util-linux) is missing"
    ((${#missing[@]})) || return 0
    export DEBIAN_FRONTEND=noninteractive
    local apt_opts=(-o DPkg::Lock::Timeout=300 -y -qq --no-install-recommends)
    # Refresh the package lists only when apt does not know the packages yet.
    if ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then
        log "apt-get update"
        timeout 600 apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
    fi
    log "installing ${missing[*]}"
    # --no-install-recommends: libnss-mymachines would edit the host's nsswitch.conf.
    if ! timeout 900 apt-get install "${apt_opts[@]}" "${missing[@]}" >&2; then
        log "install failed; refreshing the package lists and retrying once"
        timeout 600 apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
        timeout 900 apt-get install "${apt_opts[@]}" "${missing[@]}" >&2
    fi
}

# Remove a (possibly half-built) directory tree, unmounting anything below it first.
remove_tree() {
    local dir=$1 mnt
    [[ -e $dir ]] || return 0
    while read -r mnt; do
        [[ -n $mnt ]] || continue
        umount -R "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
    done < <(findmnt -rn -o TARGET \
        | awk -v d="$dir" '$0 == d || index($0, d "/") == 1' | sort -r)
    rm -rf --one-file-system -- "$dir"
}

cmd_prepare() {
    need_root
    local t0 rootfs tmp hook unit
    t0=$(now_ms)
    mkdir -p "$CACHE_ROOT"
    # One prepare at a time (an orphaned mmdebstrap inherits the lock and keeps it).
    exec 9>"$CACHE_ROOT/.lock"
    flock -w 1800 9 || die "timed out waiting for the cache lock $CACHE_ROOT/.lock"
    ensure_host_packages
    rootfs=$(rootfs_path)
    if [[ -d $rootfs ]]; then
        prune_caches "$rootfs"
        log "rootfs cached: $rootfs ($(($(now_ms) - t0)) ms)"
        printf '%s\n' "$rootfs"
        return 0
    fi
    # Leftovers of interrupted builds (we hold the lock: nobody else builds).
    for tmp in "$CACHE_ROOT"/.tmp-rootfs-*; do
        [[ -e $tmp ]] || continue
        log "removing interrupted build $tmp"
        remove_tree "$tmp"
    done
    tmp=$CACHE_ROOT/.tmp-${rootfs##*/}-$$
    # shellcheck disable=SC2064
    trap "remove_tree '$tmp'" EXIT
    trap 'exit 130' INT TERM HUP
    hook=$(customize_hook)
    local dpkgopts=()
    for unit in "${DPKG_EXCLUDES[@]}"; do dpkgopts+=("--dpkgopt=$unit"); done
    log "building $rootfs (mmdebstrap, include: $INCLUDE)"
    timeout --foreground 1800 mmdebstrap --quiet --mode=root --variant=minbase --include="$INCLUDE" \
        "${dpkgopts[@]}" --customize-hook="$hook" \
        "$SUITE" "$tmp" "$SOURCES" >&2
    [[ -x $tmp/lib/systemd/systemd ]] || die "build produced no systemd in $tmp"
    mv -T -- "$tmp" "$rootfs"
    trap - EXIT INT TERM HUP
    {
        printf 'built=%s\nseconds=%s\nsize=%s\ninclude=%s\n' "$(date -u +%FT%TZ)" \
            "$((($(now_ms) - t0) / 1000))" "$(du -sh --one-file-system "$rootfs" | cut -f1)" \
            "$INCLUDE"
    } >"$rootfs.info"
    log "rootfs built in $(($(now_ms) - t0)) ms, $(du -sh "$rootfs" | cut -f1): $rootfs"
    prune_caches "$rootfs"
    printf '%s\n' "$rootfs"
}

# Remove cached trees other than KEEP that no sandbox (per its state) runs on.
prune_caches() {
    local keep=$1 d f used
    for d in "$CACHE_ROOT"/rootfs-*; do
        [[ -d $d && $d != "$keep" ]] || continue
        used=0
        for f in "$STATE_ROOT"/*/rootfs; do
            [[ -r $f && $(cat "$f") == "$d" ]] && used=1
        done
        ((used)) && continue
        log "pruning outdated cache $d"
        remove_tree "$d"
        rm -f -- "$d.info"
    done
}

cmd_rootfs() { rootfs_path; }

cmd_clean() {
    need_root
    local d
    mkdir -p "$CACHE_ROOT"
    exec 9>"$CACHE_ROOT/.lock"
    flock -w 60 9 || die "cache is locked"
    for d in "$STATE_ROOT"/*/; do
        [[ -d $d ]] || continue
        d=$(basename "$d")
        if same_proc "$(state_get "$d" nspawn.pid)" "$(state_get "$d" nspawn.start)"; then
            die "sandbox '$d' is running on the cache: run '$0 down $d' first"
        fi
    done
    for d in "$CACHE_ROOT"/rootfs-* "$CACHE_ROOT"/.tmp-rootfs-*; do
        [[ -e $d ]] || continue
        log "removing $d"
        if [[ -d $d ]]; then remove_tree "$d"; else rm -f -- "$d"; fi
    done
}

# ---------------------------------------------------------------- wheels

cmd_prepare_wheels() {
    (($# >= 2)) || die "usage: prepare-wheels REQUIREMENTS_FILE OUTDIR [-- PIP-ARGS...]"
    local req=$1 out=$2 py=${LP_SANDBOX_PIP_PYTHON:-python3} cert
    shift 2
    [[ ${1:-} == -- ]] && shift
    [[ -r $req ]] || die "requirements file $req not readable"
    "$py" -m pip --version >/dev/null 2>&1 \
        || die "no pip for $py (set LP_SANDBOX_PIP_PYTHON, or install python3-pip)"
    # The container runs Debian 12's CPython 3.11 on glibc 2.36, x86_64: the same platform
    # as this host, so a host CPython 3.11 picks the right wheels, and builds the ones
    # only published as source (pure-Python sdists such as sdnotify) into wheels.
    "$py" -c 'import platform, sys
ok = sys.implementation.name == "cpython" and sys.version_info[:2] == (3, 11)
sys.exit(0 if ok and platform.machine() == "x86_64" else 1)' \
        || die "$py is not CPython 3.11 on x86_64 (set LP_SANDBOX_PIP_PYTHON)"
    mkdir -p "$out"
    cert=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
    local certopt=()
    [[ -r $cert ]] && certopt=(--cert "$cert")
    # --isolated: ignore the host's pip configuration (find-links, constraints, extra
    # indexes); only the certificate bundle is passed on explicitly. --use-pep517: build
    # sdists in an isolated environment (setuptools + wheel fetched for the build), since a
    # fresh venv of Debian's python (pip 23.0.1, setuptools 66, no `wheel`) cannot run
    # `setup.py bdist_wheel` for a setup.py-only sdist such as sdnotify.
    timeout 900 "$py" -m pip wheel --isolated --disable-pip-version-check --no-input \
        --use-pep517 --timeout 60 "${certopt[@]}" --prefer-binary --wheel-dir "$out" \
        --requirement "$req" "$@" >&2
    local f bad=()
    for f in "$out"/*; do
        [[ -e $f && $f != *.whl ]] && bad+=("$f")
    done
    ((${#bad[@]} == 0)) || die "not wheels: ${bad[*]}"
    log "wheels for the container in $out: $(find "$out" -name '*.whl' | wc -l)"
}

# ---------------------------------------------------------------- state

state_dir() { printf '%s/%s\n' "$STATE_ROOT" "$1"; }

state_get() {
    local f
    f=$(state_dir "$1")/$2
    if [[ -r $f ]]; then cat "$f"; fi
}

# Leader PID of a running container NAME (verified), or exit 125.
leader_of() {
    local name=$1 leader start
    leader=$(state_get "$name" leader.pid)
    start=$(state_get "$name" leader.start)
    if [[ -z $leader ]]; then
        log "error: sandbox '$name' is not up (no state in $(state_dir "$name"))"
        exit 125
    fi
    if ! same_proc "$leader" "$start"; then
        log "error: sandbox '$name' is not running (its PID 1, $leader, is gone)"
        exit 125
    fi
    printf '%s\n' "$leader"
}

in_container() {
    local leader=$1
    shift
    nsenter -t "$leader" -a env -i PATH="$CONTAINER_PATH" HOME=/root LANG=C.UTF-8 "$@"
}

# Mount points of the cgroup hierarchies nspawn places itself and the container in:
# the name=systemd v1 one and the v2 one on a hybrid host (like these), or the v2 root.
cgroup_hierarchies() {
    if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
        printf '%s\n' /sys/fs/cgroup
        return 0
    fi
    local h
    for h in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified; do
        if mountpoint -q "$h"; then printf '%s\n' "$h"; fi
    done
}

# The per-machine cgroups: nspawn (without a host systemd) creates payload/ and
# supervisor/ next to its own cgroup, so it is started in one of its own.
cgroup_dirs_for() {
    local h
    while read -r h; do
        [[ -n $h ]] && printf '%s/%s/%s\n' "$h" "$CGROUP_PARENT" "$1"
    done < <(cgroup_hierarchies)
    return 0
}

# Empty cgroups left at a hierarchy's root by an nspawn started there (for example by
# hand, as in the measured recipe): rmdir only succeeds on empty, unused ones.
remove_root_payload_cgroups() {
    local h d
    while read -r h; do
        for d in "$h/payload/init.scope" "$h/payload" "$h/supervisor"; do
            if [[ -d $d ]]; then rmdir -- "$d" 2>/dev/null || true; fi
        done
    done < <(cgroup_hierarchies)
}

# ---------------------------------------------------------------- up

cmd_up() {
    need_root
    (($# >= 1)) || die "usage: up NAME [--bind-ro H:C] [--bind H:C] [--overlay H:C] [--timeout S]"
    local name=$1 timeout=60 opt spec host cont
    shift
    check_name "$name"
    local extra=()
    while (($#)); do
        opt=$1
        case $opt in
            --bind-ro | --bind | --overlay)
                (($# >= 2)) || die "$opt needs HOST:CONTAINER"
                spec=$2
                shift 2
                host=${spec%%:*}
                cont=${spec#*:}
                [[ $spec == *:* && $host == /* && $cont == /* && $cont != *:* ]] \
                    || die "$opt wants HOST:CONTAINER with absolute paths and one ':' ($spec)"
                [[ -e $host ]] || die "$opt: $host does not exist"
                host=$(realpath -e -- "$host")
                if [[ $opt == --overlay ]]; then
                    # Writable view of HOST whose writes vanish with the container.
                    extra+=("--overlay=$host::$cont")
                else
                    extra+=("$opt=$host:$cont")
                fi
                ;;
            --timeout)
                (($# >= 2)) || die "--timeout needs seconds"
                timeout=$2
                shift 2
                [[ $timeout =~ ^[0-9]+$ ]] || die "--timeout wants whole seconds"
                ;;
            *) die "up: unknown option $opt" ;;
        esac
    done

    local rootfs=${LP_SANDBOX_ROOTFS:-}
    [[ -n $rootfs ]] || rootfs=$(rootfs_path)
    [[ -d $rootfs ]] || die "no rootfs at $rootfs: run '$0 prepare' first"
    command -v systemd-nspawn >/dev/null || die "systemd-nspawn missing: run '$0 prepare' first"

    local state
    state=$(state_dir "$name")
    if [[ -d $state ]]; then
        if same_proc "$(state_get "$name" nspawn.pid)" "$(state_get "$name" nspawn.start)"; then
            die "sandbox '$name' is already up (nspawn $(state_get "$name" nspawn.pid))"
        fi
        log "stale state for '$name' found; cleaning up first"
        stop_and_clean "$name" 5
    fi
    local others
    others=$(nspawn_pids_for "$name")
    [[ -z $others ]] || die "a systemd-nspawn for machine '$name' runs already (pid $others)"
    [[ ! -e /run/systemd/nspawn/propagate/$name ]] || stop_and_clean "$name" 5
    [[ -z $(cgroup_pids "$name") ]] || stop_and_clean "$name" 5

    mkdir -p "$state"
    # From here on, any failure (fail_up, die, set -e) stops what was started and cleans up.
    # shellcheck disable=SC2064
    trap "up_failed '$name'" EXIT
    trap 'exit 130' INT TERM HUP
    local logf=$state/nspawn.log cg
    printf '%s\n' "$rootfs" >"$state/rootfs"
    printf '%s\n' "$logf" >"$state/log"
    # Own cgroup per machine, so that the payload/ and supervisor/ cgroups nspawn creates
    # next to itself never collide with another container's and are easy to remove.
    local cgs=()
    while read -r cg; do
        [[ -n $cg ]] || continue
        mkdir -p "$cg"
        cgs+=("$cg")
    done < <(cgroup_dirs_for "$name")
    printf '%s\n' "${cgs[@]}" >"$state/cgroups"

    local args=(-q -D "$rootfs" -M "$name" -b --register=no --keep-unit --volatile=overlay
        --private-network --console=passive "${extra[@]}")
    printf '%q ' systemd-nspawn "${args[@]}" >"$state/cmdline"
    local t0 pid
    t0=$(now_ms)
    # set -m: nspawn gets a process group of its own (a Ctrl-C or a group kill aimed at the
    # caller does not hit it) while $! stays nspawn's own PID (no setsid, no wrapper:
    # the subshell moves itself into the cgroup and then execs nspawn in place).
    set -m
    (
        for cg in "${cgs[@]}"; do printf '%s\n' "$BASHPID" >"$cg/cgroup.procs"; done
        exec systemd-nspawn "${args[@]}"
    ) </dev/null >"$logf" 2>&1 &
    pid=$!
    set +m
    disown "$pid" 2>/dev/null || true
    local start=""
    local deadline=$(($(now_ms) + 5000))
    while [[ -z $start ]]; do
        start=$(proc_start "$pid")
        (($(now_ms) < deadline)) || break
        [[ -n $start ]] || sleep 0.02
    done
    [[ -n $start ]] || fail_up "$name" "systemd-nspawn (pid $pid) exited at once"
    printf '%s\n' "$pid" >"$state/nspawn.pid"
    printf '%s\n' "$start" >"$state/nspawn.start"
    # The exec in the subshell may not have happened yet: wait until comm says nspawn.
    deadline=$(($(now_ms) + 5000))
    until [[ $(cat "/proc/$pid/comm" 2>/dev/null) == systemd-nspawn ]]; do
        same_proc "$pid" "$start" || fail_up "$name" "systemd-nspawn exited"
        (($(now_ms) < deadline)) || fail_up "$name" "pid $pid never became systemd-nspawn"
        sleep 0.02
    done

    # PID 1 of the container: nspawn's child whose comm is systemd.
    deadline=$(($(now_ms) + timeout * 1000))
    local leader="" child
    while [[ -z $leader ]]; do
        same_proc "$pid" "$start" || fail_up "$name" "systemd-nspawn exited during boot"
        for child in $(proc_children "$pid"); do
            if [[ $(cat "/proc/$child/comm" 2>/dev/null) == systemd ]]; then
                leader=$child
                break
            fi
        done
        [[ -n $leader ]] && break
        (($(now_ms) < deadline)) || fail_up "$name" "no systemd child of nspawn after ${timeout}s"
        sleep 0.05
    done
    printf '%s\n' "$leader" >"$state/leader.pid"
    proc_start "$leader" >"$state/leader.start"

    # Wait for the boot to finish (systemctl --wait returned too early here).
    local st=""
    while :; do
        same_proc "$pid" "$start" || fail_up "$name" "systemd-nspawn exited during boot"
        st=$(timeout 10 nsenter -t "$leader" -a env -i PATH="$CONTAINER_PATH" \
            systemctl is-system-running 2>/dev/null) || true
        [[ $st == running || $st == degraded ]] && break
        (($(now_ms) < deadline)) \
            || fail_up "$name" "not booted after ${timeout}s (is-system-running: '${st:-?}')"
        sleep 0.1
    done
    printf '%s\n' "$(($(now_ms) - t0))" >"$state/boot.ms"
    trap - EXIT INT TERM HUP
    if [[ $st == degraded ]]; then
        log "warning: '$name' booted degraded; failed units:"
        in_container "$leader" systemctl --failed --no-legend --no-pager >&2 || true
    fi
    log "'$name' is $st after $(($(now_ms) - t0)) ms (nspawn $pid, leader $leader)"
}

# Fail the boot loudly: the message and the end of nspawn's log; the EXIT trap cleans up.
fail_up() {
    local name=$1 msg=$2 logf
    logf=$(state_get "$name" log)
    {
        printf 'sandbox: error: %s\n' "$msg"
        if [[ -n $logf && -r $logf ]]; then
            printf 'sandbox: ---- last lines of %s ----\n' "$logf"
            tail -n 80 "$logf"
            printf 'sandbox: ---- end of log ----\n'
        fi
    } >&2
    exit 1
}

up_failed() {
    local rc=$? name=$1
    trap - EXIT
    log "boot of '$name' failed: stopping it and cleaning up"
    stop_and_clean "$name" 15 || true
    exit "$((rc ? rc : 1))"
}

# ---------------------------------------------------------------- exec / cp

cmd_exec() {
    (($# >= 1)) || die "usage: exec NAME [--cwd DIR] [--env K=V]... -- CMD..."
    local name=$1
    shift
    local envs=() pre=()
    while (($#)); do
        case $1 in
            --) shift; break ;;
            --cwd) (($# >= 2)) || die "--cwd needs a directory"; pre+=(-C "$2"); shift 2 ;;
            --env)
                [[ $# -ge 2 && $2 == ?*=* ]] || die "--env needs NAME=VALUE"
                envs+=("$2")
                shift 2
                ;;
            *) break ;;
        esac
    done
    (($#)) || die "exec: no command given"
    local leader
    leader=$(leader_of "$name") || exit 125
    exec nsenter -t "$leader" -a env -i "${pre[@]}" PATH="$CONTAINER_PATH" HOME=/root \
        LANG=C.UTF-8 "${envs[@]}" "$@"
}

cmd_cp_in() {
    (($# == 3)) || die "usage: cp-in NAME HOSTPATH CONTAINER_DIR"
    local name=$1 src=$2 dest=$3 leader
    [[ -e $src ]] || die "$src does not exist"
    leader=$(leader_of "$name") || exit 125
    src=$(realpath -e -- "$src")
    # shellcheck disable=SC2016 # expanded by the shell inside the container
    tar -C "$(dirname -- "$src")" -cf - -- "$(basename -- "$src")" \
        | in_container "$leader" sh -c 'mkdir -p "$1" && tar -C "$1" -xf - --no-same-owner' \
            sh "$dest"
}

cmd_cp_out() {
    (($# == 3)) || die "usage: cp-out NAME CONTAINER_PATH HOSTDIR"
    local name=$1 src=$2 dest=$3 leader
    leader=$(leader_of "$name") || exit 125
    mkdir -p -- "$dest"
    # shellcheck disable=SC2016 # expanded by the shell inside the container
    in_container "$leader" sh -c 'tar -C "$(dirname "$1")" -cf - "$(basename "$1")"' sh "$src" \
        | tar -C "$dest" -xf - --no-same-owner
}

# ---------------------------------------------------------------- status

cmd_status() {
    if (($# == 0)); then
        local d any=0
        for d in "$STATE_ROOT"/*/; do
            [[ -d $d ]] || continue
            any=1
            cmd_status "$(basename "$d")" || true
        done
        ((any)) || echo "no sandboxes"
        return 0
    fi
    local name=$1 pid start leader st
    check_name "$name"
    pid=$(state_get "$name" nspawn.pid)
    start=$(state_get "$name" nspawn.start)
    if [[ -z $pid ]]; then
        echo "$name: down"
        return 1
    fi
    if ! same_proc "$pid" "$start"; then
        echo "$name: dead (stale state in $(state_dir "$name"); run down)"
        return 1
    fi
    leader=$(state_get "$name" leader.pid)
    st=$(timeout 10 nsenter -t "$leader" -a env -i PATH="$CONTAINER_PATH" \
        systemctl is-system-running 2>/dev/null) || true
    printf '%s: %s nspawn=%s leader=%s boot_ms=%s rootfs=%s log=%s\n' "$name" "${st:-unknown}" \
        "$pid" "$leader" "$(state_get "$name" boot.ms)" "$(state_get "$name" rootfs)" \
        "$(state_get "$name" log)"
    [[ $st == running || $st == degraded ]]
}

# ---------------------------------------------------------------- down / verify

# PIDs in NAME's own cgroups (nspawn, the container's processes): all of them ours.
cgroup_pids() {
    local cg
    while read -r cg; do
        [[ -n $cg && -d $cg ]] || continue
        find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null || true
    done < <(cgroup_dirs_for "$1") | sort -un
}

# Stop our nspawn and everything in NAME's cgroups, then remove the leftovers.
#  1. SIGTERM to the recorded nspawn PID (identity checked by start time): nspawn powers
#     the container off cleanly. It is repeated once a second within the grace period,
#     because a request that arrives before the container's systemd has installed its
#     signal handlers is dropped by the kernel (PID 1 of a PID namespace).
#  2. Past GRACE seconds (at once when GRACE is 0): SIGKILL to that PID only.
#  3. A SIGKILLed nspawn leaves its container running: whatever is still in NAME's own
#     cgroups (created by `up` for this machine alone) is then killed (cgroup.kill, or
#     SIGKILL to each listed PID where that file does not exist).
stop_and_clean() {
    local name=$1 grace=$2 pid start deadline cg pids wait_ms=3000
    pid=$(state_get "$name" nspawn.pid)
    start=$(state_get "$name" nspawn.start)
    if same_proc "$pid" "$start"; then
        local n=0
        deadline=$(($(now_ms) + grace * 1000))
        # A grace of 0 means a hard stop: no SIGTERM at all.
        ((grace == 0)) || kill -TERM "$pid" 2>/dev/null || true
        while same_proc "$pid" "$start" && (($(now_ms) < deadline)); do
            sleep 0.1
            ((++n % 10)) || kill -TERM "$pid" 2>/dev/null || true
        done
        if same_proc "$pid" "$start"; then
            log "nspawn $pid still running after ${grace}s; SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            wait_ms=0 # its container does not stop by itself
            wait_gone "$pid" "$start" 10 || log "nspawn $pid survived SIGKILL"
        fi
    fi
    deadline=$(($(now_ms) + wait_ms))
    while [[ -n $(cgroup_pids "$name") ]] && (($(now_ms) < deadline)); do sleep 0.1; done
    pids=$(cgroup_pids "$name")
    if [[ -n $pids ]]; then
        log "killing what is left in the cgroups of '$name': $(echo "$pids" | tr '\n' ' ')"
        while read -r cg; do
            if [[ -w $cg/cgroup.kill ]]; then echo 1 >"$cg/cgroup.kill" 2>/dev/null || true; fi
        done < <(cgroup_dirs_for "$name")
        for pid in $(cgroup_pids "$name"); do kill -KILL "$pid" 2>/dev/null || true; done
        deadline=$(($(now_ms) + 10000))
        while [[ -n $(cgroup_pids "$name") ]] && (($(now_ms) < deadline)); do sleep 0.1; done
    fi
    cleanup_leftovers "$name"
}

# Remove the leftovers nspawn leaves on a host whose PID 1 is not systemd.
cleanup_leftovers() {
    local name=$1 cg d state deadline
    state=$(state_dir "$name")
    # Deepest first; rmdir fails (harmlessly) on a cgroup that still has processes, and
    # a cgroup whose last process just died can stay busy for a moment: retry, bounded.
    deadline=$(($(now_ms) + 5000))
    while :; do
        while read -r cg; do
            [[ -n $cg && -d $cg ]] || continue
            while read -r d; do
                rmdir -- "$d" 2>/dev/null || true
            done < <(find "$cg" -depth -type d 2>/dev/null)
        done < <(cgroup_dirs_for "$name")
        local left=0
        while read -r cg; do
            if [[ -n $cg && -d $cg ]]; then left=1; fi
        done < <(cgroup_dirs_for "$name")
        ((left && $(now_ms) < deadline)) || break
        sleep 0.1
    done
    while read -r d; do
        if [[ -d $d/$CGROUP_PARENT ]]; then rmdir -- "$d/$CGROUP_PARENT" 2>/dev/null || true; fi
    done < <(cgroup_hierarchies)
    remove_root_payload_cgroups
    if [[ -d /run/systemd/nspawn/propagate/$name ]]; then
        rm -rf --one-file-system -- "/run/systemd/nspawn/propagate/$name"
    fi
    # nspawn's own directories, once empty (the lock files live only while it runs).
    rmdir /run/systemd/nspawn/propagate /run/systemd/nspawn/locks 2>/dev/null || true
    rmdir /run/systemd/nspawn 2>/dev/null || true
    if [[ -d $state ]]; then rm -rf --one-file-system -- "$state"; fi
    rmdir "$STATE_ROOT" 2>/dev/null || true
}

# Print what is left of NAME (ROOTFS: the tree it ran on); exit status 1 if anything is.
verify_gone() {
    local name=$1 rootfs=${2:-} left=() p cg
    [[ -n $rootfs ]] || rootfs=$(state_get "$name" rootfs)
    [[ -n $rootfs ]] || rootfs=$(rootfs_path 2>/dev/null || true)
    for p in $(nspawn_pids_for "$name"); do left+=("process: systemd-nspawn pid $p"); done
    while read -r p; do
        [[ -n $p ]] && left+=("mount: $p")
    done < <(awk -v r="$rootfs" -v n="/run/systemd/nspawn/propagate/$name" \
        -v s="$(state_dir "$name")" \
        '(r != "" && index($0, r)) || index($0, n) || index($0, s) { print $5 }' \
        /proc/self/mountinfo)
    while read -r cg; do
        [[ -n $cg && -e $cg ]] && left+=("cgroup: $cg")
    done < <(cgroup_dirs_for "$name")
    while read -r cg; do
        for p in "$cg/payload" "$cg/supervisor"; do
            if [[ -e $p ]]; then log "note: $p exists (an nspawn started at the cgroup root?)"; fi
        done
    done < <(cgroup_hierarchies)
    [[ -e /run/systemd/nspawn/propagate/$name ]] \
        && left+=("file: /run/systemd/nspawn/propagate/$name")
    [[ -e $(state_dir "$name") ]] && left+=("file: $(state_dir "$name")")
    if ((${#left[@]})); then
        printf 'sandbox: left over from %s:\n' "$name" >&2
        printf '  %s\n' "${left[@]}" >&2
        return 1
    fi
}

cmd_down() {
    need_root
    (($# >= 1)) || die "usage: down NAME [--timeout SECONDS]"
    local name=$1 grace=30 t0 rootfs
    shift
    check_name "$name"
    while (($#)); do
        case $1 in
            --timeout) grace=${2:?}; shift 2 ;;
            *) die "down: unknown option $1" ;;
        esac
    done
    [[ $grace =~ ^[0-9]+$ ]] || die "--timeout wants whole seconds"
    t0=$(now_ms)
    rootfs=$(state_get "$name" rootfs)
    stop_and_clean "$name" "$grace"
    if ! verify_gone "$name" "$rootfs"; then
        die "down '$name' left things behind (see above)"
    fi
    log "'$name' is down and clean ($(($(now_ms) - t0)) ms)"
}

cmd_verify() {
    (($# == 1)) || die "usage: verify NAME"
    check_name "$1"
    verify_gone "$1"
    log "nothing of '$1' is left"
}

# ---------------------------------------------------------------- main

main() {
    (($#)) || die "usage: $0 {prepare|rootfs|prepare-wheels|up|exec|cp-in|cp-out|status|down|verify|clean} ..."
    local cmd=$1
    shift
    case $cmd in
        prepare) cmd_prepare "$@" ;;
        rootfs) cmd_rootfs "$@" ;;
        prepare-wheels) cmd_prepare_wheels "$@" ;;
        up) cmd_up "$@" ;;
        exec) cmd_exec "$@" ;;
        cp-in) cmd_cp_in "$@" ;;
        cp-out) cmd_cp_out "$@" ;;
        status) cmd_status "$@" ;;
        down) cmd_down "$@" ;;
        verify) cmd_verify "$@" ;;
        clean) cmd_clean "$@" ;;
        -h | --help | help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
        *) die "unknown command '$cmd'" ;;
    esac
}

main "$@"
