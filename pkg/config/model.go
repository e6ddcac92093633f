// Package config reads keepalived.conf (the format of keepalived(8), see
// keepalived.conf(5)) into a typed model with keepalived's defaults applied,
// and validates it with keepalived's rules.
//
// The pipeline is: lexer (lines → words, with comments, quotes, includes,
// $NAME substitution and @conditionals) → parser (words → tree of
// statements and blocks) → builder (tree → model, per-keyword checks) →
// validator (cross-object checks such as duplicate VRIDs).
package config

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/xdpvip/xdpvip/pkg/lvs"
)

// Pos is where a keyword, block or object was written.
type Pos struct {
	File string
	Line int
}

// String returns "file:line".
func (p Pos) String() string { return fmt.Sprintf("%s:%d", p.File, p.Line) }

// Config is a whole keepalived.conf with its includes, defaults resolved.
type Config struct {
	Global              GlobalDefs            `json:"global_defs"`
	Scripts             []*VRRPScript         `json:"vrrp_script"`
	SyncGroups          []*SyncGroup          `json:"vrrp_sync_group"`
	Instances           []*VRRPInstance       `json:"vrrp_instance"`
	VirtualServerGroups []*VirtualServerGroup `json:"virtual_server_group"`
	VirtualServers      []*VirtualServer      `json:"virtual_server"`
	// BGP is xdpvip's bgp extension block (bgp.go), nil when absent.
	BGP *BGP `json:"bgp,omitempty"`
	// Files lists every file read, the main file first, then includes in
	// the order they were opened.
	Files []string
}

// Script returns the vrrp_script called name, or nil.
func (c *Config) Script(name string) *VRRPScript {
	for _, s := range c.Scripts {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Instance returns the vrrp_instance called name, or nil.
func (c *Config) Instance(name string) *VRRPInstance {
	for _, in := range c.Instances {
		if in.Name == name {
			return in
		}
	}
	return nil
}

// SyncGroup returns the vrrp_sync_group called name, or nil.
func (c *Config) SyncGroup(name string) *SyncGroup {
	for _, g := range c.SyncGroups {
		if g.Name == name {
			return g
		}
	}
	return nil
}

// VirtualServerGroup returns the virtual_server_group called name, or nil.
func (c *Config) VirtualServerGroup(name string) *VirtualServerGroup {
	for _, g := range c.VirtualServerGroups {
		if g.Name == name {
			return g
		}
	}
	return nil
}

// GlobalDefs is the global_defs block. Keywords the man page lists but that
// xdpvip has no use for are accepted without a warning and not modelled.
type GlobalDefs struct {
	Pos
	// RouterID identifies this machine (default: the host name, left empty
	// here; the daemon fills it in).
	RouterID string

	NotificationEmail     []string
	NotificationEmailFrom string
	// SMTPServer is an IP address or host name; SMTPPort defaults to 25.
	SMTPServer         string
	SMTPPort           uint16
	SMTPHeloName       string
	SMTPConnectTimeout time.Duration // default 30s
	SMTPAlert          bool
	SMTPAlertVRRP      bool
	SMTPAlertChecker   bool
	NoEmailFaults      bool

	// VRRPVersion is the default VRRP version for instances (2 or 3;
	// default 2).
	VRRPVersion int
	// VRRPStrict enforces strict RFC compliance; it is the default for
	// every instance's StrictMode.
	VRRPStrict           bool
	VRRPSkipCheckAdvAddr bool
	VRRPCheckUnicastSrc  bool
	// VRRPMcastGroup4/6 are the advert destinations (224.0.0.18, ff02::12).
	VRRPMcastGroup4 netip.Addr
	VRRPMcastGroup6 netip.Addr
	// VRRPGarpInterval and VRRPGnaInterval are the delays between
	// gratuitous ARPs / unsolicited NAs on one interface (default 0).
	VRRPGarpInterval time.Duration
	VRRPGnaInterval  time.Duration
	// Defaults for the instance garp_* keywords.
	VRRPGarpMasterDelay         time.Duration // default 5s
	VRRPGarpMasterRepeat        int           // default 5
	VRRPGarpMasterRefresh       time.Duration // default 0 (no refresh)
	VRRPGarpMasterRefreshRepeat int           // default 1
	VRRPGarpLowerPrioDelay      time.Duration // default VRRPGarpMasterDelay
	VRRPGarpLowerPrioRepeat     int           // default VRRPGarpMasterRepeat
	VRRPMinGarp                 bool
	VRRPDownTimerAdverts        int // default 3
	VRRPLowerPrioNoAdvert       bool
	VRRPHigherPrioSendAdvert    bool
	VRRPStartupDelay            time.Duration
	// DefaultInterface is where static addresses without dev go ("eth0").
	DefaultInterface string

	// EnableScriptSecurity refuses scripts that a non-root user could
	// modify when they run as root.
	EnableScriptSecurity bool
	// ScriptUser and ScriptGroup run scripts that name no user.
	ScriptUser  string
	ScriptGroup string

	LVSFlush bool
}

// ScriptCmd is a script keyword's value: the command line as written
// (quotes removed) and the optional user and group to run it as.
type ScriptCmd struct {
	Command string
	User    string
	Group   string
}

// IsZero reports whether no script is configured.
func (s ScriptCmd) IsZero() bool { return s.Command == "" }

// Argv splits Command the way keepalived does: unquoted spaces separate
// arguments, single quotes group an argument containing spaces.
func (s ScriptCmd) Argv() []string {
	var argv []string
	var cur strings.Builder
	in, have := false, false
	for _, r := range s.Command {
		switch {
		case r == '\'':
			in = !in
			have = true
		case !in && (r == ' ' || r == '\t'):
			if have {
				argv = append(argv, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		argv = append(argv, cur.String())
	}
	return argv
}

// VRRPScript is a vrrp_script block: a command run every Interval whose
// exit status is tracked by instances and sync groups.
type VRRPScript struct {
	Pos
	Name     string
	Script   ScriptCmd
	Interval time.Duration // default 1s
	// Timeout is how long a run may take before it counts as failed
	// (default: Interval).
	Timeout time.Duration
	// Weight adjusts the priority of tracking instances (-253..253, default 0:
	// failure means FAULT).
	Weight   int
	Reverse  bool
	Rise     int // default 1
	Fall     int // default 1
	InitFail bool
}

// TrackInterface is one line of a track_interface block.
type TrackInterface struct {
	Name    string
	Weight  int // -253..253; 0 = down means FAULT
	Reverse bool
}

// TrackScript is one line of a track_script block. When WeightSet is
// false the script's own weight applies.
type TrackScript struct {
	Name      string
	Weight    int
	WeightSet bool
	Reverse   bool
}

// Notify holds the notify scripts of an instance or sync group.
type Notify struct {
	Master           ScriptCmd
	Backup           ScriptCmd
	Fault            ScriptCmd
	Stop             ScriptCmd
	Any              ScriptCmd // "notify": called with type, name, state, priority
	MasterRxLowerPri ScriptCmd
	Deleted          ScriptCmd // sync groups only
}

// SyncGroup is a vrrp_sync_group: instances that change state together.
type SyncGroup struct {
	Pos
	Name            string
	Members         []string         `json:"group"`
	TrackInterfaces []TrackInterface `json:"track_interface"`
	TrackScripts    []TrackScript    `json:"track_script"`
	Notify          Notify
	SMTPAlert       bool
	GlobalTracking  bool
	// SyncGroupTrackingWeight keeps members' tracking weights.
	SyncGroupTrackingWeight bool
}

// VIP is one line of virtual_ipaddress or virtual_ipaddress_excluded:
// "<IPADDR>[/<MASK>] [brd IP] [dev IF] [scope S] [label L] ...".
type VIP struct {
	Pos
	// Prefix is the address with its mask (/32 or /128 when none given).
	Prefix netip.Prefix `json:"address"`
	Brd    netip.Addr
	Dev    string // empty: the instance's interface
	Label  string
	Scope  string // global (default), site, link, host, nowhere
	Peer   netip.Addr
	// NoTrack: deleting the address does not take the instance out of MASTER.
	NoTrack bool
	UseVMAC bool
	// PreferredLft is an IPv6 VIP's preferred lifetime in seconds
	// (preferred_lft; LifetimeForever for "forever"). As keepalived 2.2.7,
	// it defaults to 0 for a /128 VIP, which the kernel then holds
	// deprecated: never chosen as the source of this host's own traffic
	// (health checks, a TUN tunnel's outer header), and to forever for a
	// shorter prefix. IPv4 VIPs: always LifetimeForever (keepalived reads
	// the option and does not use it).
	PreferredLft uint32 `json:"preferred_lft"`
}

// LifetimeForever is an address lifetime that never ends
// (INFINITY_LIFE_TIME).
const LifetimeForever = ^uint32(0)

// Auth types.
const (
	AuthNone = ""
	AuthPass = "PASS"
	AuthAH   = "AH"
)

// Initial states.
const (
	StateBackup = "BACKUP"
	StateMaster = "MASTER"
)

// TTLRange is the IPv4 TTL / IPv6 hop limit range a unicast peer's adverts
// must arrive with (unicast_peer's min_ttl / max_ttl).
type TTLRange struct{ Min, Max uint8 }

// VRRPInstance is a vrrp_instance block.
type VRRPInstance struct {
	Pos
	Name string
	// InitialState is StateMaster or StateBackup (default BACKUP), after
	// keepalived's corrections (vrrp_strict starts a non-owner as BACKUP).
	InitialState string `json:"state"`
	// ConfiguredState is the state keyword as written ("" when absent).
	ConfiguredState string
	Interface       string
	VRID            int           `json:"virtual_router_id"` // 1..255, required
	Priority        int           // 1..255, default 100
	AdvertInt       time.Duration // default 1s
	// Version is 2 or 3: the instance's version keyword, else global
	// vrrp_version, else 2; IPv6 instances always use 3.
	Version int
	// AuthType is AuthNone, AuthPass or AuthAH; AuthPass is at most 8
	// characters (keepalived truncates). Ignored (cleared) under StrictMode
	// and for VRRPv3.
	AuthType string
	AuthPass string
	// IgnoredAuthType and IgnoredAuthPass hold an authentication block that
	// was parsed but is not used (vrrp_strict or VRRPv3), as keepalived
	// ignores it.
	IgnoredAuthType string
	IgnoredAuthPass string

	VIPs         []VIP `json:"virtual_ipaddress"`
	ExcludedVIPs []VIP `json:"virtual_ipaddress_excluded"`

	McastSrcIP   netip.Addr
	McastDstIP   netip.Addr
	UnicastSrcIP netip.Addr
	UnicastPeers []netip.Addr `json:"unicast_peer"`
	// UnicastPeerTTL is each unicast peer's min_ttl / max_ttl, in the
	// order of UnicastPeers (0 / 255 when not given).
	UnicastPeerTTL []TTLRange
	UnicastTTL     int // -1 when not set
	// CheckUnicastSrc rejects adverts whose source is not a unicast peer.
	CheckUnicastSrc bool

	// Preempt is true unless nopreempt is given.
	Preempt      bool
	PreemptDelay time.Duration
	// Accept: accept packets to the VIPs when not address owner. Default
	// true; under StrictMode default is Priority == 255.
	Accept bool

	TrackInterfaces  []TrackInterface `json:"track_interface"`
	TrackScripts     []TrackScript    `json:"track_script"`
	DontTrackPrimary bool
	Notify           Notify
	SMTPAlert        bool

	// UseVMAC puts the VIPs on a macvlan with the VRRP virtual MAC;
	// VMACName is its name (default "vrrp.<VRID>"), VMACAddr an optional
	// explicit MAC.
	UseVMAC      bool
	VMACName     string
	VMACAddr     net.HardwareAddr
	VMACXmitBase bool

	GarpMasterDelay         time.Duration
	GarpMasterRepeat        int
	GarpMasterRefresh       time.Duration
	GarpMasterRefreshRepeat int
	GarpLowerPrioDelay      time.Duration
	GarpLowerPrioRepeat     int
	// DownTimerAdverts is the master down timer in advert intervals
	// (1..100, default 3).
	DownTimerAdverts     int
	LowerPrioNoAdvert    bool
	HigherPrioSendAdvert bool
	SkipCheckAdvAddr     bool
	// StrictMode: the instance's strict_mode, else global vrrp_strict.
	StrictMode         bool
	PromoteSecondaries bool
	// SyncGroup is the name of the vrrp_sync_group holding this instance.
	SyncGroup string
}

// Family returns 6 if the instance is IPv6 (its VIPs, or failing those its
// unicast addresses, are IPv6), else 4.
func (in *VRRPInstance) Family() int {
	if len(in.VIPs) > 0 {
		return familyOf(in.VIPs[0].Prefix.Addr())
	}
	if in.UnicastSrcIP.IsValid() {
		return familyOf(in.UnicastSrcIP)
	}
	if len(in.UnicastPeers) > 0 {
		return familyOf(in.UnicastPeers[0])
	}
	return 4
}

func familyOf(a netip.Addr) int {
	if a.Is4() || a.Is4In6() {
		return 4
	}
	return 6
}

// LVS schedulers (lb_algo / lvs_sched).
var Schedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "sh", "dh", "mh", "sed", "nq", "fo", "ovf", "twos"}

// LVS forwarding methods (lb_kind / lvs_method).
const (
	MethodNAT = "NAT"
	MethodDR  = "DR"
	MethodTUN = "TUN"
)

// Tunnel is how a TUN server's packets are encapsulated. keepalived reads
// it after any forwarding method (and keeps it; only TUN uses it); the
// default is IP-in-IP without checksums.
type Tunnel struct {
	// Type is lvs.TunnelIPIP (default), lvs.TunnelGUE or lvs.TunnelGRE:
	// keepalived's words ("type ipip|gue|gre").
	Type string `json:"type"`
	// Port is the GUE destination UDP port; 0 for the other types.
	Port uint16 `json:"port"`
	// Csum is lvs.TunnelNoCsum (default), lvs.TunnelCsum or
	// lvs.TunnelRemCsum (GUE only); IP-in-IP has no checksum option.
	Csum string `json:"csum"`
}

// DefaultTunnel is keepalived's tunnel when none is written.
var DefaultTunnel = Tunnel{Type: lvs.TunnelIPIP, Csum: lvs.TunnelNoCsum}

// LVS is the tunnel in the lvs model's type.
func (t Tunnel) LVS() lvs.Tunnel { return lvs.Tunnel{Type: t.Type, Port: t.Port, Csum: t.Csum} }

// Forwarding is a server's method as `xdpvip check-config` prints it: with
// the tunnel in keepalived's words for TUN ("TUN type gue port 6080 csum").
func Forwarding(method string, t Tunnel) string {
	if method != MethodTUN {
		return method
	}
	return method + " " + t.LVS().Options()
}

// VirtualServerGroupEntry is one line of a virtual_server_group: an address
// range with an optional port, or a fwmark.
type VirtualServerGroupEntry struct {
	Pos
	// First and Last bound the address range (equal for one address).
	First netip.Addr
	Last  netip.Addr
	Port  uint16
	// FWMark is set (non-zero) for "fwmark N" lines; Family is 0, 4 or 6
	// (inet/inet6).
	FWMark uint32 `json:"fwmark"`
	Family int
}

// VirtualServerGroup is a virtual_server_group block.
type VirtualServerGroup struct {
	Pos
	Name    string
	Entries []VirtualServerGroupEntry
}

// SorryServer is the real server used when quorum is lost.
type SorryServer struct {
	Addr   netip.Addr `json:"ip"`
	Port   uint16
	Method string `json:"lb_kind"`
	Tunnel Tunnel `json:"tunnel"`
}

// VirtualServer is a virtual_server block, keyed by exactly one of
// Addr+Port, FWMark or Group.
type VirtualServer struct {
	Pos
	Addr   netip.Addr `json:"ip"`
	Port   uint16     // 0 only when persistent
	FWMark uint32     `json:"fwmark"`
	Group  string

	DelayLoop time.Duration // default 60s
	// Scheduler is one of Schedulers (default "wlc").
	Scheduler  string   `json:"lb_algo"`
	SchedFlags []string `json:"sched_flags"` // flag-1, sh-port, mh-fallback, ...
	OPS        bool
	// Method is MethodNAT (default), MethodDR or MethodTUN, and Tunnel
	// the tunnel options written with it (DefaultTunnel when none).
	Method string `json:"lb_kind"`
	Tunnel Tunnel `json:"tunnel"`
	// PersistenceTimeout is 0 when not persistent; "persistence_timeout"
	// without a value means 360s.
	PersistenceTimeout time.Duration
	// PersistenceGranularity is the persistence netmask as prefix length
	// (0: not set, whole client address).
	PersistenceGranularity int
	PersistenceEngine      string
	Protocol               string // TCP (default), UDP, SCTP
	// IPFamily is 4 or 6 for fwmark services, 0 when not set.
	IPFamily           int
	SorryServer        *SorryServer
	SorryServerInhibit bool
	Quorum             int // default 1
	Hysteresis         int
	QuorumUp           ScriptCmd
	QuorumDown         ScriptCmd
	Alpha              bool
	Omega              bool
	InhibitOnFailure   bool
	HASuspend          bool
	SMTPAlert          bool
	Virtualhost        string
	// Announce is xdpvip's `announce` extension (bgp.go).
	Announce Announce

	// Defaults for real servers and checkers, already applied to them.
	ConnectTimeout   time.Duration
	Retry            int
	DelayBeforeRetry time.Duration
	Warmup           time.Duration

	RealServers []*RealServer `json:"real_server"`
}

// Key names the virtual server the way keepalived logs it:
// "[192.0.2.1]:80", "fwmark 3" or "group NAME".
func (vs *VirtualServer) Key() string {
	switch {
	case vs.Group != "":
		return "group " + vs.Group
	case vs.FWMark != 0:
		return fmt.Sprintf("fwmark %d", vs.FWMark)
	default:
		return netip.AddrPortFrom(vs.Addr, vs.Port).String()
	}
}

// RealServer is a real_server block. Fields keepalived inherits from the
// virtual server are already resolved.
type RealServer struct {
	Pos
	Addr             netip.Addr `json:"ip"`
	Port             uint16
	Weight           int    // default 1
	Method           string `json:"lb_kind"`
	Tunnel           Tunnel `json:"tunnel"`
	InhibitOnFailure bool
	NotifyUp         ScriptCmd
	NotifyDown       ScriptCmd
	UThreshold       int `json:"uthreshold"`
	LThreshold       int `json:"lthreshold"`
	Virtualhost      string
	Alpha            bool
	SMTPAlert        bool

	DelayLoop        time.Duration
	ConnectTimeout   time.Duration
	Retry            int
	DelayBeforeRetry time.Duration
	Warmup           time.Duration

	Checkers []*Checker `json:"checker"`
}

// CheckerKind is the block keyword of a health checker.
type CheckerKind string

// Checker kinds.
const (
	TCPCheck  CheckerKind = "TCP_CHECK"
	HTTPGet   CheckerKind = "HTTP_GET"
	SSLGet    CheckerKind = "SSL_GET"
	MiscCheck CheckerKind = "MISC_CHECK"
	DNSCheck  CheckerKind = "DNS_CHECK"
	SMTPCheck CheckerKind = "SMTP_CHECK"
	UDPCheck  CheckerKind = "UDP_CHECK"
	PingCheck CheckerKind = "PING_CHECK"
	BFDCheck  CheckerKind = "BFD_CHECK"
	FileCheck CheckerKind = "FILE_CHECK"
)

// StatusRange is an inclusive range of HTTP status codes.
type StatusRange struct{ Lo, Hi int }

// URL is one url block of HTTP_GET / SSL_GET.
type URL struct {
	Path   string
	Digest string // lower-case hex MD5 of the body
	// StatusCodes accepted (100..599); 200-299 when no status_code is
	// given, with a digest too, as keepalived checks both.
	StatusCodes  []StatusRange
	Virtualhost  string
	Regex        string
	RegexNoMatch bool
}

// StatusOK reports whether code is one of the URL's accepted codes (any
// code when StatusCodes is empty, which the parser never leaves).
func (u URL) StatusOK(code int) bool {
	if len(u.StatusCodes) == 0 {
		return true
	}
	for _, r := range u.StatusCodes {
		if code >= r.Lo && code <= r.Hi {
			return true
		}
	}
	return false
}

// Checker is one health checker block of a real server, with keepalived's
// inheritance resolved: connect_ip/connect_port default to the real
// server's address and port, timers to the real server's, whose own
// default to the virtual server's.
type Checker struct {
	Pos
	Kind             CheckerKind `json:"type"`
	ConnectIP        netip.Addr
	ConnectPort      uint16
	BindTo           netip.Addr `json:"bindto"`
	BindIf           string
	BindPort         uint16
	FWMark           uint32        `json:"fwmark"`
	ConnectTimeout   time.Duration // default 5s
	Retry            int           // default 1; DNS_CHECK 3; MISC_CHECK 0
	DelayBeforeRetry time.Duration // default 1s; HTTP/SSL 3s; DNS delay_loop
	Warmup           time.Duration // default delay_loop
	DelayLoop        time.Duration
	Alpha            bool
	LogAllFailures   bool

	// HTTP_GET / SSL_GET.
	URLs         []URL  `json:"url"`
	HTTPProtocol string // "1.0", "1.0C" or "1.1"
	FastRecovery bool
	Virtualhost  string
	EnableSNI    bool

	// MISC_CHECK.
	MiscPath    ScriptCmd
	MiscTimeout time.Duration // default DelayLoop
	MiscDynamic bool

	// DNS_CHECK.
	DNSType string // default SOA
	DNSName string // default "."

	// SMTP_CHECK.
	HeloName string

	// UDP_CHECK. Payload is sent as datagram (random when nil). When
	// RequireReply is set, a reply must come; ReplyPattern (hex, x = any
	// nibble) is compared with it when not empty.
	Payload        []byte
	RequireReply   bool
	ReplyPattern   string
	MinReplyLength int
	MaxReplyLength int // default 255

	// BFD_CHECK / FILE_CHECK.
	BFDName   string
	TrackFile string
}
