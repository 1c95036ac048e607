# scripts/lib.sh - shared by scripts/demo and scripts/test: install what is missing, build a preset.
# Sourced, not run.

# Debian packages every build needs; scripts add their own extras.
INGESTD_BUILD_PACKAGES="build-essential cmake pkg-config libuv1-dev libjansson-dev libmimalloc-dev
libcmocka-dev libhttp-parser-dev zlib1g-dev libnats-dev"

# ensure_packages PKG...: installs the packages that are not installed yet. As root it runs
# apt-get; otherwise it prints the exact command and stops.
ensure_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing Debian packages; run as root:" >&2
        echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    echo "== installing: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# build_preset NAME: configures and builds one CMake preset (build/NAME).
build_preset() {
    echo "== configure + build: $1" >&2
    cmake --preset "$1" >/dev/null
    cmake --build --preset "$1"
}
