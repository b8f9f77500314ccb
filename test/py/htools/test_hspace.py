"""Tests for ganeti.htools.hspace, the program."""

import io
import os
import re
import subprocess
import sys

import pytest

from ganeti.htools import hspace, loader_text

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
DATA = os.path.join(HERE, "data")

#: 4 nodes of 64 GiB, 1 TiB (binary), 16 CPUs, 1 spindle
SIM = "p,4,1t,64g,16"

#: every key hspace(1) documents (without the HTS_ prefix)
STATS = ["SCORE", "INST_CNT", "MEM_FREE", "MEM_AVAIL", "MEM_RESVD", "MEM_INST",
         "MEM_OVERHEAD", "MEM_EFF", "DSK_FREE", "DSK_AVAIL", "DSK_RESVD", "DSK_INST",
         "DSK_EFF", "SPN_FREE", "SPN_INST", "SPN_EFF", "CPU_INST", "CPU_EFF",
         "MNODE_MEM_AVAIL", "MNODE_DSK_AVAIL"]
KEYS = (["CLUSTER_MEM", "CLUSTER_DSK", "CLUSTER_CPU", "CLUSTER_VCPU", "CLUSTER_SPN",
         "CLUSTER_NODES"]
        + [f"{phase}_{key}" for phase in ("INI", "TRL", "FIN") for key in STATS]
        + [f"{prefix}_{key}" for prefix in ("SPEC", "TSPEC_INI")
           for key in ("MEM", "DSK", "CPU", "SPN", "RQN", "DISK_TEMPLATE")]
        + ["TSPEC"]
        + [f"KM_{kind}_{res}" for kind in ("USED", "POOL", "UNAV")
           for res in ("CPU", "NPU", "MEM", "DSK")]
        + ["ALLOC_USAGE", "ALLOC_COUNT", "ALLOC_INSTANCES", "ALLOC_FAIL_REASON",
           "ALLOC_FAILMEM_CNT", "ALLOC_FAILDISK_CNT", "ALLOC_FAILCPU_CNT",
           "ALLOC_FAILN1_CNT", "OK"])


def _main(args):
    out, err = io.StringIO(), io.StringIO()
    code = hspace.main(args, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def _keys(out):
    """The HTS_ values, unquoted as a shell would."""
    values = {}
    for line in out.splitlines():
        match = re.fullmatch(r"HTS_([A-Z0-9_]+)=(.*)", line)
        assert match, f"not a key line: {line!r}"
        values[match.group(1)] = match.group(2).strip("'")
    return values


def _text_file(tmp_path, nodes, instances=(), templates="plain,drbd,diskless",
               extra_groups=()):
    groups = ["default|uuid-1|preferred||"] + list(extra_groups)
    lines = [f"{name}|{mem}|0|{fmem}|{dsk}|{fdsk}|{cpus}|N|{group}|1||N|0|0|1.0"
             for name, mem, fmem, dsk, fdsk, cpus, group in nodes]
    policy = (f"|128,1,1024,1,1,1|128,1,1024,1,1,1;32768,8,1048576,16,8,12|{templates}"
              "|4.0|32.0")
    sections = [groups, lines, list(instances), [], [policy]]
    path = tmp_path / "cluster.data"
    path.write_text("\n".join("".join(line + "\n" for line in sec) for sec in sections))
    return str(path)


def test_machine_readable_keys(tmp_path):
    code, out, err = _main(["--simulate", SIM, "--machine-readable",
                            "--disk-template", "plain", "--standard-alloc", "10g,4g,1"])
    assert code == 0 and err == ""
    keys = _keys(out)
    assert set(KEYS) <= set(keys), set(KEYS) - set(keys)
    assert out.splitlines()[-1] == "HTS_OK=1"
    assert keys["CLUSTER_NODES"] == "4" and keys["CLUSTER_MEM"] == str(4 * 65536)
    assert keys["CLUSTER_DSK"] == str(4 * 1024 * 1024) and keys["CLUSTER_CPU"] == "64"
    assert keys["SPEC_MEM"] == "4096" and keys["SPEC_DSK"] == "10240"
    assert keys["SPEC_DISK_TEMPLATE"] == "plain" and keys["SPEC_RQN"] == "1"
    # memory bound: 16 instances of 4 GiB per node
    assert keys["ALLOC_INSTANCES"] == keys["ALLOC_COUNT"] == "64"
    assert keys["ALLOC_FAIL_REASON"] == "FAILMEM" and keys["ALLOC_FAILMEM_CNT"] == "4"
    assert int(keys["FIN_INST_CNT"]) - int(keys["INI_INST_CNT"]) == 64
    assert keys["FIN_MEM_FREE"] == "0" and keys["FIN_MEM_INST"] == str(4 * 65536)
    assert keys["FIN_MEM_EFF"] == "1.00000000"
    # tiered: one max-spec (32 GiB, 1 TiB) instance per node, nothing more
    assert keys["TSPEC_INI_MEM"] == "32768" and keys["TSPEC_INI_DSK"] == "1048576"
    assert keys["TSPEC"] == "32768,1048576,8,12=4"
    tiered = sum(int(item.split("=")[1]) for item in keys["TSPEC"].split())
    assert int(keys["TRL_INST_CNT"]) - int(keys["INI_INST_CNT"]) == tiered
    assert keys["KM_POOL_MEM"] == str(4 * 32768) and keys["KM_USED_MEM"] == "0"
    # the output is a shell fragment
    path = tmp_path / "capacity"
    path.write_text(out)
    proc = subprocess.run(["sh", "-c", f'. {path} && test "$HTS_OK" = 1 &&'
                           ' echo "$HTS_TSPEC"'], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0 and proc.stdout == "32768,1048576,8,12=4\n"


def test_human_readable():
    code, out, _ = _main(["--simulate", SIM, "--disk-template", "plain",
                          "--standard-alloc", "10g,4g,1"])
    assert code == 0
    assert out.startswith("The cluster has 4 nodes and the following resources:\n"
                          "  MEM 262144, DSK 4194304, CPU 64, VCPU 256.\n"
                          "There are no initial instances on the cluster.\n"
                          "Tiered (initial size) instance spec is:\n"
                          "  MEM 32768, DSK 1048576, CPU 8, using disk template"
                          " 'plain'.\n"
                          "Tiered allocation results:\n"
                          "  -   4 instances of spec MEM 32768, DSK 1048576, CPU 8\n")
    assert ("Standard (fixed-size) instance spec is:\n"
            "  MEM 4096, DSK 10240, CPU 1, using disk template 'plain'.\n"
            "Normal (fixed-size) allocation results:\n"
            "  -  64 instances allocated\n"
            "  - most likely failure reason: FailMem\n") in out
    assert "  - memory usage efficiency: 100.00%\n" in out
    assert "  -   vcpu usage efficiency: 25.00%\n" in out
    assert _main(["--simulate", SIM, "--machine-readable=no"])[1].startswith(
        "The cluster has 4 nodes")
    assert _main(["--simulate", SIM, "--machine-readable=yes"])[1].startswith(
        "HTS_CLUSTER_MEM=")


def test_default_spec_and_template_come_from_the_policy():
    code, out, _ = _main(["--simulate", SIM, "--machine-readable"])
    keys = _keys(out)
    assert code == 0
    # the default policy: drbd first, std 128 MiB, 1 GiB, 1 CPU
    assert (keys["SPEC_MEM"], keys["SPEC_DSK"], keys["SPEC_CPU"]) == ("128", "1024", "1")
    assert keys["SPEC_DISK_TEMPLATE"] == "drbd" and keys["SPEC_RQN"] == "2"
    # 32 spindle uses per node, each DRBD instance takes one on two nodes
    assert keys["ALLOC_INSTANCES"] == "64"
    assert keys["ALLOC_FAIL_REASON"] == "FAILSPINDLES"
    code, out, _ = _main(["--simulate", SIM, "--machine-readable", "--spindle-use", "2"])
    assert _keys(out)["ALLOC_INSTANCES"] == "32"
    # the policy wants a spindle use of at least 1
    code, out, _ = _main(["--simulate", SIM, "--machine-readable", "--spindle-use", "0"])
    keys = _keys(out)
    assert keys["ALLOC_INSTANCES"] == "0" and keys["ALLOC_FAIL_REASON"] == "FAILSPINDLES"


def test_drbd_halves_disk(tmp_path):
    node = 10 * (10240 + 128)
    path = _text_file(tmp_path, [(f"node{i}", 65536, 65536, node, node, 16, "uuid-1")
                                 for i in range(1, 5)])
    counts = {}
    for template in ("plain", "drbd"):
        code, out, _ = _main(["-t", path, "--machine-readable", "--disk-template",
                              template, "--standard-alloc", "10g,1g,1"])
        keys = _keys(out)
        assert code == 0 and keys["ALLOC_FAIL_REASON"] == "FAILDISK"
        counts[template] = int(keys["ALLOC_INSTANCES"])
    assert counts == {"plain": 40, "drbd": 20}


def test_tiered_spec_option():
    code, out, _ = _main(["--simulate", "p,4,2t,48g,16", "--machine-readable",
                          "--disk-template", "plain", "--tiered-alloc", "1t,32g,8"])
    keys = _keys(out)
    assert code == 0 and keys["TSPEC_INI_MEM"] == "32768"
    assert keys["TSPEC"] == "32768,1048576,8,1=4 16384,1048576,8,1=4"
    code, out, _ = _main(["--simulate", "p,4,2t,48g,16", "--disk-template", "plain",
                          "--tiered-alloc", "1t,32g,8"])
    assert "  -   4 instances of spec MEM 16384, DSK 1048576, CPU 8\n" in out


def _n1_failing(tmp_path):
    nodes = [("node1", 8192, 2048, 102400, 102400, 8, "uuid-1"),
             ("node2", 8192, 4096, 102400, 102400, 8, "uuid-1"),
             ("node3", 8192, 8192, 102400, 102400, 8, "uuid-2"),
             ("node4", 8192, 8192, 102400, 102400, 8, "uuid-2")]
    insts = ["big|4096|10240|1|running|Y|node2|node1|drbd||1|-"]
    return _text_file(tmp_path, nodes, insts, extra_groups=["other|uuid-2|preferred||"])


def test_n1_failure_stops_allocation(tmp_path):
    path = _n1_failing(tmp_path)
    args = ["-t", path, "--machine-readable", "--disk-template", "plain",
            "--standard-alloc", "1g,1g,1"]
    code, out, _ = _main(args)
    keys = _keys(out)
    assert code == 0 and keys["OK"] == "1"
    assert keys["ALLOC_INSTANCES"] == "0" and keys["ALLOC_FAIL_REASON"] == "FAILN1"
    assert keys["ALLOC_FAILN1_CNT"] == "1" and keys["TSPEC"] == ""
    code, out, err = _main(args + ["--independent-groups", "-vvvv"])
    keys = _keys(out)
    assert keys["ALLOC_INSTANCES"] == "16"
    assert "Bad nodes: node1" in err and "Bad groups: default" in err
    code, out, _ = _main(args + ["--accept-existing-errors"])
    assert _keys(out)["ALLOC_INSTANCES"] == "20"
    code, out, _ = _main(["-t", path, "--independent-groups", "--disk-template",
                          "plain", "--standard-alloc", "1g,1g,1"])
    assert "  - instances per group: other 16\n" in out


def test_group_option():
    args = ["--simulate", "p,2,100g,8g,4", "--simulate", "p,2,100g,8g,4",
            "--machine-readable", "--standard-alloc", "1g,1g,1", "--disk-template", "plain"]
    assert _keys(_main(args)[1])["ALLOC_INSTANCES"] == "32"
    assert _keys(_main(args + ["-G", "group-02"])[1])["ALLOC_INSTANCES"] == "16"
    code, _, err = _main(args + ["-G", "nosuchgroup"])
    assert code == 1 and "nosuchgroup" in err


def test_print_nodes_and_maps_go_to_stderr(tmp_path):
    code, out, err = _main(["--simulate", "p,2,100g,8g,4", "--machine-readable",
                            "-p", "Name,pcnt", "-vv", "--standard-alloc", "1g,2g,1"])
    assert code == 0 and _keys(out)["OK"] == "1"
    for title in ("Initial cluster status:", "Tiered allocation status:",
                  "Standard allocation status:", "Tiered allocation map",
                  "Standard allocation map"):
        assert title in err
    assert re.search(r"node-01-001 +2\n", err)
    code, _, err = _main(["--simulate", SIM, "-p", "nosuchfield"])
    assert code == 1 and "nosuchfield" in err


def test_save_cluster(tmp_path):
    save = str(tmp_path / "state")
    code, out, _ = _main(["--simulate", "p,2,100g,8g,4", "--machine-readable",
                          "-S", save, "--standard-alloc", "1g,2g,1"])
    keys = _keys(out)
    assert code == 0
    alloc = loader_text.load(save + ".alloc")
    tiered = loader_text.load(save + ".tiered")
    assert len(alloc.instances) == int(keys["ALLOC_INSTANCES"]) == 4
    assert len(tiered.instances) == int(keys["TRL_INST_CNT"])
    # the saved state can be fed back: nothing more fits
    code, out, _ = _main(["-t", save + ".alloc", "--machine-readable",
                          "--standard-alloc", "1g,2g,1"])
    assert _keys(out)["ALLOC_INSTANCES"] == "0"
    code, _, err = _main(["--simulate", SIM, "-S", "/nonexistent/dir/state"])
    assert code == 1 and "Cannot save" in err


def test_limit_and_ratios():
    args = ["--simulate", SIM, "--machine-readable", "--disk-template", "plain"]
    keys = _keys(_main(args + ["-l", "7"])[1])
    assert keys["ALLOC_INSTANCES"] == "7" and int(keys["TRL_INST_CNT"]) <= 7
    # CPU bound: 16 CPUs at the policy's ratio 4, or at ratio 1
    keys = _keys(_main(args + ["--standard-alloc", "1g,1g,2"])[1])
    assert keys["ALLOC_INSTANCES"] == "128" and keys["ALLOC_FAIL_REASON"] == "FAILCPU"
    keys = _keys(_main(args + ["--standard-alloc", "1g,1g,2", "--max-cpu", "1"])[1])
    assert keys["ALLOC_INSTANCES"] == "32" and keys["CLUSTER_VCPU"] == "64"
    # keeping half of the disk free
    keys = _keys(_main(args + ["--standard-alloc", "100g,1g,1"])[1])
    assert keys["ALLOC_INSTANCES"] == "40"
    keys = _keys(_main(args + ["--standard-alloc", "100g,1g,1", "--min-disk", "0.5"])[1])
    assert keys["ALLOC_INSTANCES"] == "20"
    assert keys["INI_DSK_AVAIL"] == str(2 * 1024 * 1024)


def test_storage_units_in_human_output(tmp_path):
    path = _text_file(tmp_path, [("node1", 8192, 8192, 102400, 102400, 4, "uuid-1")])
    text = open(path).read().replace("|0|1.0\n", "|0|1.0|102400,102400,lvm-vg,xenvg\n")
    open(path, "w").write(text)
    code, out, _ = _main(["-t", path, "--disk-template", "plain"])
    assert code == 0
    assert "  Storage units (free/total MiB): lvm-vg xenvg 102400/102400.\n" in out


def test_errors(tmp_path):
    code, out, err = _main(["-t", str(tmp_path / "missing.data")])
    assert code == 1 and out == "" and "Cannot read -t file" in err
    code, _, err = _main(["--simulate", SIM, "--standard-alloc", "10g,4g"])
    assert code == 1 and "invalid instance spec '10g,4g'" in err
    code, _, err = _main(["--simulate", SIM, "--min-disk", "2"])
    assert code == 1 and "--min-disk" in err
    with pytest.raises(SystemExit) as exc:
        _main(["--simulate", SIM, "--machine-readable=maybe"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        _main(["--simulate", SIM, "--disk-template", "floppy"])


def test_launcher():
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "build", "pylib"))
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "hspace"),
                           "--simulate", SIM, "--machine-readable"],
                          capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.endswith("HTS_OK=1\n")
