package ipvsvm

// SeedListing is `ipvsadm -Ln` in a guest that runs the seed chapter's
// configuration (examples/seed-master.conf): its one service and two real
// servers, in numeric form, without trailing spaces. Both guest IPVS
// tests compare against it: pkg/ipvs's (the table made through the
// library) and tests/'s (made by the daemon).
const SeedListing = `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  192.168.12.211:80 wrr persistent 50
  -> 192.168.28.103:80            Route   1      0          0
  -> 192.168.28.104:80            Route   1      0          0`
