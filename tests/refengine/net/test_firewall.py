"""refengine's packet filter and NAT rules: ``ruleset`` (pure, with a small
evaluator of the FWD chain so the isolation is tested as verdicts, not text),
then ``apply``/``remove`` against the host's real iptables.

The real tests use a random tag, bridges that do not exist (``rt<tag>a``),
subnets in 198.18.0.0/15 and published ports bound to 198.51.100.7, which is
no local address: the rules are loaded for real but never match any packet.
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess

import pytest

from reference_runtime.errors import ContainerError
from reference_runtime.net import firewall as fw

TAG = "0a1b2c"


def net(bridge: str = "rf1a2b3c4d5e", subnet: str = "10.213.4.0/24", internal: bool = False,
        icc: bool = True) -> dict:
    return {"bridge": bridge, "subnet": subnet, "internal": internal, "icc": icc}


def pub(host_ip: str = "", host_port: int = 8080, proto: str = "tcp", cip: str = "10.213.4.2", cport: int = 80,
        bridge: str = "rf1a2b3c4d5e") -> dict:
    return {"proto": proto, "host_ip": host_ip, "host_port": host_port, "container_ip": cip,
            "container_port": cport, "bridge": bridge}


def rules(text: str, chain: str) -> list[str]:
    """The rules of one chain without the comment match, which is decoration."""
    return [ln.replace(" -m comment --comment refengine", "") for ln in text.splitlines()
            if ln.startswith(f"-A {chain} ")]


def _iface(name: str, pattern: str) -> bool:
    """iptables' interface match: a trailing + matches any suffix."""
    return name.startswith(pattern[:-1]) if pattern.endswith("+") else name == pattern


def verdict(text: str, i: str, o: str, state: str = "NEW") -> str:
    """Walk REF<TAG>-FWD for a packet from interface ``i`` to ``o`` in conntrack
    ``state`` (NEW, DNAT (a NEW connection to a published port), ESTABLISHED)
    and return the target of the first matching rule, or RETURN."""
    for rule in rules(text, f"REF{TAG}-FWD"):
        tokens, ok = rule.split()[2:], True
        while tokens and tokens[0] != "-j":
            neg = tokens[0] == "!"
            if neg:
                tokens.pop(0)
            opt = tokens.pop(0)
            if opt == "-m":
                tokens.pop(0)
                continue
            value = tokens.pop(0)
            hit = {"-i": _iface(i, value), "-o": _iface(o, value), "--ctstate": state in value.split(",")}[opt]
            ok = ok and hit != neg
        if ok:
            return tokens[1]
    return "RETURN"


# ---- ruleset: the text ---------------------------------------------------------------------------------------------

def test_declares_the_three_chains_in_their_tables_and_no_jump():
    text = fw.ruleset(TAG, [net()], [pub()])
    nat, filt = text.split("*filter")
    assert nat.startswith("*nat\n") and nat.rstrip().endswith("COMMIT"), text
    assert f":REF{TAG}-PRE - [0:0]" in nat.splitlines() and f":REF{TAG}-POST - [0:0]" in nat.splitlines(), text
    assert f":REF{TAG}-FWD - [0:0]" in filt.splitlines() and filt.rstrip().endswith("COMMIT"), text
    assert not re.search(r"^-[AI] (FORWARD|PREROUTING|OUTPUT|POSTROUTING) ", text, re.M), "jumps belong to apply()"


def test_empty_state_still_declares_and_so_flushes_the_chains():
    text = fw.ruleset(TAG, [], [])
    assert [ln for ln in text.splitlines() if ln] == [
        "*nat", f":REF{TAG}-PRE - [0:0]", f":REF{TAG}-POST - [0:0]", "COMMIT",
        "*filter", f":REF{TAG}-FWD - [0:0]", f":REF{TAG}-IN - [0:0]", "COMMIT"], text


@pytest.mark.parametrize("host_ip", ["", "0.0.0.0"])
def test_port_on_every_address_is_dnat_without_destination(host_ip):
    assert rules(fw.ruleset(TAG, [net()], [pub(host_ip)]), f"REF{TAG}-PRE") == [
        f"-A REF{TAG}-PRE -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.213.4.2:80"]


def test_loopback_binding_matches_only_127_0_0_1():
    text = fw.ruleset(TAG, [net()], [pub("127.0.0.1", 5353, "udp", cport=53)])
    assert rules(text, f"REF{TAG}-PRE") == [
        f"-A REF{TAG}-PRE -d 127.0.0.1/32 -p udp -m udp --dport 5353 -j DNAT --to-destination 10.213.4.2:53"]


def test_postrouting_of_an_ordinary_network():
    assert rules(fw.ruleset(TAG, [net()], []), f"REF{TAG}-POST") == [
        f"-A REF{TAG}-POST -s 10.213.4.0/24 ! -o rf1a2b3c4d5e -j MASQUERADE",
        f"-A REF{TAG}-POST -s 127.0.0.0/8 -o rf1a2b3c4d5e -j MASQUERADE",
        f"-A REF{TAG}-POST -s 10.213.4.0/24 -o rf1a2b3c4d5e -m conntrack --ctstate DNAT -j MASQUERADE"]


def test_internal_network_is_never_masqueraded_outwards():
    post = rules(fw.ruleset(TAG, [net(internal=True)], []), f"REF{TAG}-POST")
    assert not any("! -o" in r for r in post), post
    assert f"-A REF{TAG}-POST -s 127.0.0.0/8 -o rf1a2b3c4d5e -j MASQUERADE" in post
    assert f"-A REF{TAG}-POST -s 10.213.4.0/24 -o rf1a2b3c4d5e -m conntrack --ctstate DNAT -j MASQUERADE" in post


def test_forward_rules_of_an_ordinary_network_in_order():
    c, br = f"REF{TAG}-FWD", "rf1a2b3c4d5e"
    assert rules(fw.ruleset(TAG, [net()], []), c) == [
        f"-A {c} -o {br} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        f"-A {c} -i {br} -o {br} -j ACCEPT",
        f"-A {c} -o {br} -m conntrack --ctstate DNAT -j ACCEPT",
        f"-A {c} -o {br} -j DROP",
        *(f"-A {c} -i {br} -o {other} -m conntrack ! --ctstate DNAT -j RETURN" for other in fw.FOREIGN_BRIDGES),
        f"-A {c} -i {br} ! -o {br} -j ACCEPT"]


def test_no_container_reaches_the_hosts_loopback():
    # route_localnet on the bridges accepts packets to 127.0.0.0/8 from them: a container's
    # raw packet to 127.0.0.1 (CAP_NET_RAW is a default capability) must be dropped on INPUT,
    # the replies to the host's own connections to 127.0.0.1:PORT (ESTABLISHED) must not.
    text = fw.ruleset(TAG, [net(), net("rf2", "10.213.5.0/24", internal=True)], [pub("127.0.0.1")])
    assert rules(text, f"REF{TAG}-IN") == [
        f"-A REF{TAG}-IN -d 127.0.0.0/8 -i {br} -m conntrack ! --ctstate RELATED,ESTABLISHED -j DROP"
        for br in ("rf1a2b3c4d5e", "rf2")], text
    assert text.index(f":REF{TAG}-IN") > text.index("*filter"), "the INPUT chain belongs to the filter table"


def test_every_rule_carries_the_comment():
    text = fw.ruleset(TAG, [net(), net("rf2", "10.213.5.0/24", internal=True)], [pub()])
    assert all("-m comment --comment refengine" in ln for ln in text.splitlines() if ln.startswith("-A")), text


# ---- ruleset: the verdicts -----------------------------------------------------------------------------------------

A, B, I = net("rfa", "10.1.0.0/24"), net("rfb", "10.2.0.0/24"), net("rfi", "10.3.0.0/24", internal=True)


@pytest.mark.parametrize("order", [[A, B, I], [I, B, A]], ids=["a-first", "internal-first"])
@pytest.mark.parametrize("i, o, state, expected", [
    ("rfa", "eth0", "NEW", "ACCEPT"),          # out to the world
    ("eth0", "rfa", "ESTABLISHED", "ACCEPT"),  # its replies
    ("eth0", "rfa", "NEW", "DROP"),            # nothing else comes in...
    ("eth0", "rfa", "DNAT", "ACCEPT"),         # ...but a published port
    ("rfa", "rfa", "NEW", "ACCEPT"),           # icc
    ("rfa", "rfb", "NEW", "DROP"),             # two networks are isolated, both ways
    ("rfb", "rfa", "NEW", "DROP"),
    ("rfb", "rfa", "DNAT", "ACCEPT"),          # a published port is reachable from another network
    ("rfa", "rfb", "ESTABLISHED", "ACCEPT"),   # and answers
    ("rfi", "rfi", "NEW", "ACCEPT"),           # internal: among themselves only
    ("rfi", "eth0", "NEW", "DROP"),
    ("rfi", "rfa", "NEW", "DROP"),
    ("eth0", "rfi", "DNAT", "DROP"),
    ("rfa", "rfi", "DNAT", "DROP"),
    ("eth0", "docker0", "NEW", "RETURN"),      # not ours: docker's rules decide
    ("rfa", "docker0", "NEW", "RETURN"),       # nor is a way into docker's, podman's or another root's bridge
    ("rfa", "br-0a1b2c3d4e5f", "NEW", "RETURN"),
    ("rfa", "podman0", "NEW", "RETURN"),
    ("rfa", "rf0a0b0c1234567", "NEW", "RETURN"),
    ("rfa", "docker0", "DNAT", "ACCEPT"),      # but their published ports are reachable
])
def test_forward_verdicts(order, i, o, state, expected):
    text = fw.ruleset(TAG, order, [])
    got = verdict(text, i, o, state)
    assert got == expected, f"{state} {i} -> {o}: {got}, expected {expected}\n{text}"


def test_icc_off_drops_neighbours_even_through_a_published_port():
    text = fw.ruleset(TAG, [net("rfa", "10.1.0.0/24", icc=False), B], [pub(cip="10.1.0.2", bridge="rfa")])
    assert verdict(text, "rfa", "rfa", "NEW") == "DROP"
    assert verdict(text, "rfa", "rfa", "DNAT") == "DROP"  # docker drops this hairpin with icc off too
    assert verdict(text, "rfb", "rfa", "DNAT") == "ACCEPT"
    assert verdict(text, "rfa", "eth0", "NEW") == "ACCEPT"


# ---- ruleset: refused input ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("tag, networks, published", [
    ("0a1b2", [net()], []),
    ("0a1b2c\n-A FORWARD -j ACCEPT", [net()], []),
    (TAG, [net("rf 1")], []),
    (TAG, [net("rf1\n-A FORWARD -j ACCEPT")], []),
    (TAG, [net("x" * 16)], []),
    (TAG, [net("-jACCEPT")], []),
    (TAG, [net(), net()], []),
    (TAG, [net(subnet="10.213.4.300/24")], []),
    (TAG, [net(subnet="10.213.4.1/24")], []),
    (TAG, [net(subnet="fd00::/64")], []),
    (TAG, [net(subnet=167772160)], []),
    (TAG, [net()], [pub(host_port=0)]),
    (TAG, [net()], [pub(host_port=65536)]),
    (TAG, [net()], [pub(cport="80")]),
    (TAG, [net()], [pub(cport=True)]),
    (TAG, [net()], [pub(proto="sctp")]),
    (TAG, [net()], [pub(host_ip="::")]),
    (TAG, [net()], [pub(host_ip="localhost")]),
    (TAG, [net()], [pub(cip="10.213.5.2")]),
    (TAG, [net()], [pub(cip="10.213.4.2 -j ACCEPT")]),
    (TAG, [net()], [pub(bridge="rfother")]),
    (TAG, [net()], [pub("0.0.0.0", 8080), pub("127.0.0.1", 8080, cip="10.213.4.3")]),
    (TAG, [net()], [pub("127.0.0.1", 8080), pub("", 8080, cip="10.213.4.3")]),
])
def test_invalid_input_is_refused_with_one_line(tag, networks, published):
    with pytest.raises(ContainerError) as exc:
        fw.ruleset(tag, networks, published)
    assert str(exc.value) and "\n" not in str(exc.value), repr(str(exc.value))


def test_internal_network_publishes_nothing():
    text = fw.ruleset(TAG, [net(internal=True)], [pub()])
    assert rules(text, f"REF{TAG}-PRE") == [], text


def test_same_port_on_other_protocol_or_other_address_is_fine():
    text = fw.ruleset(TAG, [net()], [pub("127.0.0.1", 8080), pub("127.0.0.2", 8080), pub("", 8080, "udp")])
    assert len(rules(text, f"REF{TAG}-PRE")) == 3


@pytest.mark.skipif(shutil.which("iptables-restore") is None, reason="iptables is not installed")
def test_iptables_restore_accepts_the_text():
    text = fw.ruleset(TAG, [A, B, I, net("rfc", "10.4.0.0/24", icc=False)],
                      [pub("", 8080, cip="10.1.0.2", bridge="rfa"), pub("127.0.0.1", 53, "udp", "10.2.0.2", 53, "rfb")])
    r = subprocess.run(["iptables-restore", "-w", "--noflush", "--test"], input=text, capture_output=True, text=True)
    assert r.returncode == 0, f"iptables-restore --test exited {r.returncode}: {r.stderr}\n{text}"


# ---- apply / remove on the host's iptables -------------------------------------------------------------------------

needs_iptables = pytest.mark.skipif(shutil.which("iptables-restore") is None, reason="iptables is not installed")


def saved() -> list[str]:
    """iptables-save's chain and rule lines, without the counters that traffic moves."""
    out = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    return [re.sub(r" \[\d+:\d+\]$", "", ln) for ln in out.splitlines() if not ln.startswith("#")]


def mine(tag: str) -> list[str]:
    return [ln for ln in saved() if f"REF{tag}-" in ln]


# Test tags start with "fe": tox runs this file on two xdist workers at once,
# and one test's before/after comparison must not see the other's tags come and go.
TEST_TAG = re.compile(r"REFfe[0-9a-f]{4}-")


ANY_TAG = re.compile(r"REF[0-9a-f]{6}-")


def others(tag: str) -> list[str]:
    """Everything but refengine's: docker's and podman's rules. Other refengine roots'
    rules are left out: tests on another xdist worker change theirs meanwhile (a
    second tag of this test is compared on its own)."""
    return [ln for ln in saved() if f"REF{tag}-" not in ln and not TEST_TAG.search(ln) and not ANY_TAG.search(ln)]


def jumps(tag: str) -> list[str]:
    return [ln for ln in mine(tag) if ln.split()[1] in ("FORWARD", "PREROUTING", "OUTPUT", "POSTROUTING")]


EXPECTED_JUMPS = ["-A FORWARD -j REF{t}-FWD", "-A PREROUTING -m addrtype --dst-type LOCAL -j REF{t}-PRE",
                  "-A OUTPUT -m addrtype --dst-type LOCAL -j REF{t}-PRE", "-A POSTROUTING -j REF{t}-POST"]


@pytest.fixture
def new_tag(request):
    """A random tag (or several), removed from iptables afterwards whatever happens."""
    def make() -> str:
        tag = "fe" + secrets.token_hex(2)
        request.addfinalizer(lambda: fw.remove(tag))
        return tag
    return make


def state(tag: str, two: bool = True) -> tuple[list[dict], list[dict]]:
    networks = [net(f"rt{tag}a", "198.18.1.0/24"), net(f"rt{tag}b", "198.18.2.0/24", internal=True)]
    ports = [pub("198.51.100.7", 18080, cip="198.18.1.2", bridge=f"rt{tag}a"),
             pub("198.51.100.7", 18053, "udp", "198.18.1.2", 53, f"rt{tag}a")]
    return (networks, ports) if two else (networks[:1], [])


@needs_iptables
def test_apply_twice_is_idempotent_and_loads_the_text_verbatim(new_tag):
    tag = new_tag()
    text = fw.ruleset(tag, *state(tag))
    before = others(tag)
    fw.apply(tag, text)
    fw.apply(tag, text)
    assert sorted(jumps(tag)) == sorted(j.format(t=tag) for j in EXPECTED_JUMPS), jumps(tag)
    now = mine(tag)
    for chain in (f"REF{tag}-PRE", f"REF{tag}-POST", f"REF{tag}-FWD"):  # same rules, same order, same spelling
        assert [ln for ln in now if ln.startswith(f"-A {chain} ")] == \
            [ln for ln in text.splitlines() if ln.startswith(f"-A {chain} ")], now
    forward = [ln for ln in saved() if ln.startswith("-A FORWARD ")]
    first_foreign = next(n for n, ln in enumerate(forward) if " -j REF" not in ln)
    assert forward.index(f"-A FORWARD -j REF{tag}-FWD") < first_foreign, f"our jump is not before docker's: {forward}"
    inputs = [ln for ln in saved() if ln.startswith("-A INPUT ")]
    assert inputs.count(f"-A INPUT -j REF{tag}-IN") == 1, f"INPUT's jump missing or doubled: {inputs}"
    assert all(" -j REF" in ln for ln in inputs[:inputs.index(f"-A INPUT -j REF{tag}-IN")]), \
        f"a host rule precedes our INPUT jump: {inputs}"
    assert [ln for ln in now if ln.startswith(f"-A REF{tag}-IN ")] == \
        [ln for ln in text.splitlines() if ln.startswith(f"-A REF{tag}-IN ")], now
    assert fw.present(tag)
    assert others(tag) == before, "apply changed rules that are not its own"


@needs_iptables
def test_apply_of_a_smaller_set_drops_the_old_rules(new_tag):
    tag = new_tag()
    fw.apply(tag, fw.ruleset(tag, *state(tag)))
    small = fw.ruleset(tag, *state(tag, two=False))
    fw.apply(tag, small)
    rules_now = sorted(ln for ln in mine(tag) if ln.startswith(f"-A REF{tag}-"))
    assert rules_now == sorted(ln for ln in small.splitlines() if ln.startswith("-A")), rules_now
    assert not any(f"rt{tag}b" in ln or "--dport" in ln for ln in mine(tag)), mine(tag)
    assert len(jumps(tag)) == 4, jumps(tag)


@needs_iptables
def test_apply_puts_back_a_missing_jump_only(new_tag):
    tag = new_tag()
    text = fw.ruleset(tag, *state(tag))
    fw.apply(tag, text)
    subprocess.run(["iptables", "-w", "-t", "nat", "-D", "POSTROUTING", "-j", f"REF{tag}-POST"], check=True)
    fw.apply(tag, text)
    assert sorted(jumps(tag)) == sorted(j.format(t=tag) for j in EXPECTED_JUMPS), jumps(tag)


@needs_iptables
def test_remove_leaves_nothing_of_the_tag_and_everything_else(new_tag):
    tag, other = new_tag(), new_tag()
    fw.apply(other, fw.ruleset(other, *state(other)))
    fw.apply(tag, fw.ruleset(tag, *state(tag)))
    before, before_other = others(tag), mine(other)
    fw.remove(tag)
    assert mine(tag) == [] and not fw.present(tag), mine(tag)
    assert others(tag) == before, "remove changed rules that are not its own"
    assert mine(other) == before_other and len(jumps(other)) == 4, "remove changed another tag's rules"


@needs_iptables
def test_remove_of_a_half_present_tag(new_tag):
    tag = new_tag()
    fw.apply(tag, fw.ruleset(tag, *state(tag)))
    # A crash's leftovers: FORWARD's jump and the POST chain gone, an extra copy of a jump.
    broken = (f"*filter\n-D FORWARD -j REF{tag}-FWD\nCOMMIT\n*nat\n-D POSTROUTING -j REF{tag}-POST\n"
              f"-F REF{tag}-POST\n-X REF{tag}-POST\n-A OUTPUT -m addrtype --dst-type LOCAL -j REF{tag}-PRE\nCOMMIT\n")
    subprocess.run(["iptables-restore", "-w", "--noflush"], input=broken, text=True, check=True)
    assert len([j for j in jumps(tag) if j.startswith("-A OUTPUT")]) == 2
    fw.remove(tag)
    assert mine(tag) == [] and not fw.present(tag), mine(tag)
    fw.remove(tag)  # nothing left: still fine


@needs_iptables
def test_a_refused_text_changes_nothing_and_says_why_in_one_line(new_tag):
    tag = new_tag()
    text = fw.ruleset(tag, *state(tag)).replace("-j MASQUERADE", "-j NO-SUCH-TARGET", 1)
    with pytest.raises(ContainerError) as exc:
        fw.apply(tag, text)
    assert "iptables-restore" in str(exc.value) and "\n" not in str(exc.value), str(exc.value)
    assert not fw.present(tag), mine(tag)
