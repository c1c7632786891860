# Installs the Debian packages Troncal needs to build, test and run, when they are missing.
# Sourced by scripts/run and scripts/test.

# Packages: TLS and curl headers for Foundation networking and swift-nio-ssl consumers, SQLite,
# PostgreSQL (the production store, and the store tests), sipp (sip-tester) for call tests, openssl for
# TLS probing, python3 for the test webhook receiver, chromium (headless) for the dashboard tests, prometheus and
# prometheus-alertmanager for promtool and amtool (their daemons are not started: see policy-rc.d below), iptables for
# the NAT the phone tests build inside their own network namespaces, baresip-core and sox for the real-phone audio test
# (sox also checks recorded voicemail), espeak-ng for the IVR's and voicemail's spoken prompts, keepalived and
# wireguard-tools to check the configurations `troncal infra render` writes (keepalived -t, wg-quick strip; no daemon
# is started and no WireGuard interface is made).
# The two-site lab (scripts/lab, and its tests) also runs PostgreSQL under Patroni with etcd.
TRONCAL_LAB_PACKAGES=(patroni etcd-server etcd-client)
TRONCAL_DEBIAN_PACKAGES=(libssl-dev libcurl4-openssl-dev libsqlite3-dev zlib1g-dev postgresql postgresql-client sip-tester openssl procps iproute2 curl python3 chromium prometheus prometheus-alertmanager iptables baresip-core sox espeak-ng keepalived wireguard-tools)

troncal_install_deps() {
    local missing=()
    local package
    for package in "${TRONCAL_DEBIAN_PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$package")
        fi
    done
    if ((${#missing[@]} > 0)); then
        echo "troncal: installing missing Debian packages: ${missing[*]}" >&2
        local sudo=""
        if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
        $sudo apt-get update -qq
        # No daemon of these packages (PostgreSQL's cluster, Prometheus, Alertmanager) is started by the install: a
        # policy-rc.d that refuses is in place while apt runs, unless the machine has its own.
        local policy=""
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            policy=/usr/sbin/policy-rc.d
            printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
            $sudo chmod 755 "$policy"
        fi
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        if [ -n "$policy" ]; then $sudo rm -f "$policy"; fi
    fi
    if ! command -v swift >/dev/null 2>&1; then
        if [ -x /opt/swift/usr/bin/swift ]; then
            export PATH="/opt/swift/usr/bin:$PATH"
        else
            echo "troncal: the Swift 6 toolchain is not installed (https://www.swift.org/install/linux/); it is not a Debian package" >&2
            return 1
        fi
    fi
}
