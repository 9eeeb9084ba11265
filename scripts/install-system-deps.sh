#!/usr/bin/env bash
# Install the external DICOM tools the test suite compares against (`make test` runs this
# first; tests/conftest.py's external_tool fixture finds the tools on PATH).
#
# Debian packages, installed only when one of their binaries is missing:
#   dcmtk          -> dcmdump, storescu, storescp, echoscu
#   dicom3tools    -> dciodvfy
#   libgdcm-tools  -> gdcmanon, gdcmdump, gdcminfo
#   chromium       -> chromium (headless: opens the HTML report of `dcmanon check`)
#   openssl        -> openssl (decrypts the Encrypted Attributes Sequence independently)
#   orthanc        -> Orthanc (a PACS for the DICOM node's tests, started by them on loopback)
#   orthanc-dicomweb -> its DICOMweb plugin (STOW-RS destination of the node's tests)
#
# Idempotent: when every binary is already on PATH nothing is installed and
# `apt-get update` is not run. Needs root (or sudo) only when something is
# missing.
set -euo pipefail

# package:binary pairs; a package is wanted when any of its binaries is missing.
readonly REQUIREMENTS=(
    "dcmtk:dcmdump"
    "dcmtk:storescu"
    "dcmtk:storescp"
    "dcmtk:echoscu"
    "dicom3tools:dciodvfy"
    "libgdcm-tools:gdcmanon"
    "libgdcm-tools:gdcmdump"
    "libgdcm-tools:gdcminfo"
    "chromium:chromium"
    "openssl:openssl"
    "orthanc:Orthanc"
)

missing_packages=()
for requirement in "${REQUIREMENTS[@]}"; do
    package="${requirement%%:*}"
    binary="${requirement#*:}"
    if ! command -v "$binary" >/dev/null 2>&1; then
        already=0
        for p in "${missing_packages[@]+"${missing_packages[@]}"}"; do
            if [[ "$p" == "$package" ]]; then
                already=1
            fi
        done
        if [[ "$already" -eq 0 ]]; then
            missing_packages+=("$package")
        fi
    fi
done

# Orthanc's DICOMweb plugin is a library, not a binary: wanted when its file is missing.
if [[ ! -f /usr/share/orthanc/plugins/libOrthancDicomWeb.so ]]; then
    missing_packages+=("orthanc-dicomweb")
fi

if [[ "${#missing_packages[@]}" -eq 0 ]]; then
    echo "install-system-deps: all tools present"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-system-deps: missing ${missing_packages[*]} and apt-get is not available" >&2
    exit 1
fi

SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        echo "install-system-deps: need root (or sudo) to install ${missing_packages[*]}:" \
             "run this script as root, or run pytest directly to skip the tests that need" \
             "them" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
apt_get=("${SUDO[@]+"${SUDO[@]}"}" env DEBIAN_FRONTEND=noninteractive apt-get -q -y)

# Refresh the package lists only when apt does not know a wanted package yet
# (e.g. on a fresh container whose lists are empty).
updated=0
for package in "${missing_packages[@]}"; do
    if [[ "$updated" -eq 0 ]] && ! apt-cache show "$package" >/dev/null 2>&1; then
        echo "install-system-deps: apt-get update"
        "${apt_get[@]}" update
        updated=1
    fi
done

echo "install-system-deps: installing ${missing_packages[*]}"
if ! "${apt_get[@]}" install --no-install-recommends "${missing_packages[@]}"; then
    # Stale package lists can point at versions the mirror no longer has.
    if [[ "$updated" -eq 1 ]]; then
        exit 1
    fi
    echo "install-system-deps: install failed; apt-get update and retry"
    "${apt_get[@]}" update
    "${apt_get[@]}" install --no-install-recommends "${missing_packages[@]}"
fi

status=0
for requirement in "${REQUIREMENTS[@]}"; do
    binary="${requirement#*:}"
    if ! command -v "$binary" >/dev/null 2>&1; then
        echo "install-system-deps: $binary still missing after install" >&2
        status=1
    fi
done
exit "$status"
