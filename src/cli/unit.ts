// keel's systemd unit, installed by `keel install` (install.ts) and kept as systemd/keel.service
// for packagers; test/install.test.ts checks the two are the same text. A string here because the
// single binary carries no files besides its code and addons.
export const KEEL_UNIT = `# keel network boot appliance. Install the single binary as /usr/local/bin/keel and this unit as
# /etc/systemd/system/keel.service; configuration in /etc/keel/keel.toml (see docs/config.md).
[Unit]
Description=keel network boot appliance (DHCP, TFTP, HTTP boot, REST API)
Documentation=file:///usr/share/doc/keel/README.md
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart=/usr/local/bin/keel serve
# Data (LMDB store, login socket, initial admin password) lives here, mode 0700.
StateDirectory=keel
StateDirectoryMode=0700
Environment=KEEL_SERVER_DATA_DIR=/var/lib/keel
# The native addons are unpacked once per build into the service user's cache.
CacheDirectory=keel
Environment=XDG_CACHE_HOME=/var/cache/keel
Restart=on-failure
# Each running TFTP transfer holds two sockets (docs/tftp.md): 4096 transfers need ≈ 8,200 fds.
LimitNOFILE=65536
# Runs as root so that the root defaults apply (/etc/keel/keel.toml, ports 80 and 69,
# /var/lib/keel; docs/config.md), but with only the capabilities it needs: ports 67, 69, 80 and
# 4011, UDP bound per interface (SO_BINDTODEVICE). Everything it writes is its own: no
# CAP_DAC_OVERRIDE (serial consoles: /dev/ttyS* belong to root).
CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_NET_RAW CAP_NET_ADMIN
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes

[Install]
WantedBy=multi-user.target
`;
