#!/usr/bin/env bash
# Build (or reuse) the local control plane's binaries from Go modules, then link them into
# .devcluster/bin/. Idempotent: a binary directory that already exists is never rebuilt.
#
#   devcluster/build.sh          build what is missing, link into .devcluster/bin/
#   devcluster/build.sh regen    regenerate devcluster/go/{k8s,etcd}/go.{mod,sum}
#                                from devcluster/versions.env (commit the result)
#
# Everything heavy lives outside the repository, under CACHE_DIR (default
# ${XDG_CACHE_HOME:-$HOME/.cache}/webapp-operator):
#   $CACHE_DIR/go/mod     GOMODCACHE (override with DEVCLUSTER_GOMODCACHE to share one)
#   $CACHE_DIR/go/build   GOCACHE
#   $CACHE_DIR/bin/<component>-<version>-<hash of inputs>/   the binaries
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
# shellcheck source=versions.env
source "$HERE/versions.env"

CACHE_DIR=${CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/webapp-operator}
export GOMODCACHE=${DEVCLUSTER_GOMODCACHE:-$CACHE_DIR/go/mod}
export GOCACHE=$CACHE_DIR/go/build
# Flags are passed explicitly; do not let a GOFLAGS from the environment change the outputs.
export GOFLAGS=
BIN_CACHE=$CACHE_DIR/bin
LINK_DIR=$REPO/.devcluster/bin

log() { printf '[devcluster/build] %s\n' "$*" >&2; }

command -v go >/dev/null || { log "go is not installed (need Go >= 1.26)"; exit 1; }

if [[ ${1:-build} == regen ]]; then
    shift
    exec python3 "$HERE/gen_gomod.py" "$@"
fi

mkdir -p "$BIN_CACHE" "$GOMODCACHE" "$GOCACHE" "$LINK_DIR"
# One build at a time per cache (two `make` runs may race).
exec 9>"$CACHE_DIR/build.lock"
flock 9

GO_VERSION=$(go env GOVERSION)
COMMON=(-trimpath -buildvcs=false)

# inputs_hash TEXT [FILE...]: a short digest of the build inputs, so that a change of go.mod, of
# a main, of the flags or of the Go toolchain lands in a new directory instead of reusing a stale
# one.
inputs_hash() {
    local text=$1; shift
    { printf '%s\n' "$GO_VERSION" "$text"; if (($#)); then cat -- "$@"; fi; } \
        | sha256sum | cut -c1-12
}

# Link time version strings: what `kubectl version` and the API server's /version report. The
# module proxy records no commit for a release, so gitCommit names the module version instead.
k8s_ldflags() {
    local v=$KUBERNETES_VERSION major minor date
    major=${v#v}; major=${major%%.*}
    minor=${v#v"$major".}; minor=${minor%%.*}
    date=$(go list -m -json "k8s.io/kubernetes@$v" 2>/dev/null \
        | sed -n 's/.*"Time": "\(.*\)".*/\1/p' | head -n1)
    date=${date:-1970-01-01T00:00:00Z}
    local flags="-s -w" pkg
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        flags+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
        flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
        flags+=" -X $pkg.gitCommit=module-$v"
    done
    printf '%s' "$flags"
}

build_k8s() {
    local mod=$HERE/go/k8s ldflags hash dest
    ldflags=$(cd "$mod" && k8s_ldflags)
    mapfile -t mains < <(cd "$mod" && find cmd -name '*.go' | sort)
    hash=$(cd "$mod" && inputs_hash "$ldflags" go.mod go.sum "${mains[@]}")
    dest=$BIN_CACHE/k8s-$KUBERNETES_VERSION-$hash
    if [[ ! -x $dest/kube-apiserver ]]; then
        log "building kube-apiserver, kube-controller-manager, kube-scheduler, kubectl" \
            "$KUBERNETES_VERSION (slow the first time) -> $dest"
        local start=$SECONDS tmp
        tmp=$(mktemp -d "$BIN_CACHE/.k8s-XXXXXX")
        (cd "$mod" && go build "${COMMON[@]}" -mod=readonly -ldflags "$ldflags" -o "$tmp/" ./cmd/...)
        rm -rf "$dest"; mv "$tmp" "$dest"; chmod 755 "$dest"
        log "kubernetes built in $((SECONDS - start))s"
    fi
    link "$dest" kube-apiserver kube-controller-manager kube-scheduler kubectl
}

build_etcd() {
    local mod=$HERE/go/etcd ldflags="-s -w" hash dest
    hash=$(cd "$mod" && inputs_hash "$ldflags" go.mod go.sum main.go)
    dest=$BIN_CACHE/etcd-$ETCD_VERSION-$hash
    if [[ ! -x $dest/etcd ]]; then
        log "building etcd $ETCD_VERSION -> $dest"
        local start=$SECONDS tmp
        tmp=$(mktemp -d "$BIN_CACHE/.etcd-XXXXXX")
        (cd "$mod" && go build "${COMMON[@]}" -mod=readonly -ldflags "$ldflags" -o "$tmp/etcd" .)
        rm -rf "$dest"; mv "$tmp" "$dest"; chmod 755 "$dest"
        log "etcd built in $((SECONDS - start))s"
    fi
    link "$dest" etcd
}

# go_install NAME PACKAGE VERSION LDFLAGS: `go install PACKAGE@VERSION` into its own directory.
# These modules have no replace directives, so their own go.mod/go.sum pin everything.
go_install() {
    local name=$1 pkg=$2 version=$3 ldflags=$4 hash dest
    hash=$(inputs_hash "$pkg@$version $ldflags")
    dest=$BIN_CACHE/$name-$version-$hash
    if [[ ! -x $dest/$name ]]; then
        log "building $name $version -> $dest"
        local start=$SECONDS tmp
        tmp=$(mktemp -d "$BIN_CACHE/.$name-XXXXXX")
        (cd "$tmp" && GOBIN=$tmp go install "${COMMON[@]}" -ldflags "$ldflags" "$pkg@$version")
        rm -rf "$dest"; mv "$tmp" "$dest"; chmod 755 "$dest"
        log "$name built in $((SECONDS - start))s"
    fi
    link "$dest" "$name"
}

# The kwok binary has no built-in behaviour: it needs Stages (what a node and a pod go through).
# Take kwokctl's default set ("fast": node-initialize, node-heartbeat-with-lease, pod-ready,
# pod-complete, pod-delete) from the same module version, as one multi-document config file.
kwok_stages() {
    local dir out
    out=$(readlink -f "$LINK_DIR/kwok")
    out=$(dirname "$out")/kwok-stages.yaml
    if [[ ! -s $out ]]; then
        dir=$(cd "$BIN_CACHE" && go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" \
            | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
        local f tmp=$out.tmp
        : >"$tmp"
        for f in "$dir"/kustomize/stage/node/fast/node-*.yaml \
            "$dir"/kustomize/stage/node/heartbeat-with-lease/node-*.yaml \
            "$dir"/kustomize/stage/pod/fast/pod-*.yaml; do
            { echo "---"; cat "$f"; } >>"$tmp"
        done
        mv "$tmp" "$out"
    fi
    ln -sfn "$out" "$LINK_DIR/kwok-stages.yaml"
}

# link DIR NAME...: point .devcluster/bin/NAME at DIR/NAME.
link() {
    local dir=$1; shift
    local name
    for name in "$@"; do
        ln -sfn "$dir/$name" "$LINK_DIR/$name"
    done
}

start=$SECONDS
build_etcd
go_install kwok sigs.k8s.io/kwok/cmd/kwok "$KWOK_VERSION" \
    "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}"
kwok_stages
# As helm's Makefile: the Kubernetes version helm assumes offline (`helm template`, lint) is the
# one of the client-go it is built with.
helm_ldflags() {
    local gomod minor v=helm.sh/helm/v3/internal/version
    gomod=$(cd "$BIN_CACHE" && go mod download -json "helm.sh/helm/v3@$HELM_VERSION" \
        | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    minor=$(sed -n 's/^[[:space:]]*k8s.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$gomod")
    printf '%s' "-s -w -X $v.version=$HELM_VERSION -X $v.gitTreeState=clean"
    local pkg
    for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
        printf '%s' " -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$minor"
    done
}
go_install helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" "$(helm_ldflags)"
build_k8s
log "binaries ready in $LINK_DIR ($((SECONDS - start))s)"
