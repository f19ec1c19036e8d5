"""The command line, through typer's CliRunner and, where start-up matters, a real subprocess.

Expected figures come from torchvision and hand derivations written out here, never from our
own output.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cnncalc import __version__
from cnncalc.cli import app
from cnncalc.zoo import zoo_names

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent

# AlexNet, 227×227×3, single tower (the seeds' hand count):
#   conv1 11·11·3·96+96 = 34,944          MACs 55·55·96·363      = 105,415,200
#   conv2 5·5·96·256+256 = 614,656        MACs 27·27·256·2,400   = 447,897,600
#   conv3 3·3·256·384+384 = 885,120       MACs 13·13·384·2,304   = 149,520,384
#   conv4 3·3·384·384+384 = 1,327,488     MACs 13·13·384·3,456   = 224,280,576
#   conv5 3·3·384·256+256 = 884,992       MACs 13·13·256·3,456   = 149,520,384
#   fc6 9,216·4,096+4,096 = 37,752,832    MACs 37,748,736
#   fc7 4,096·4,096+4,096 = 16,781,312    MACs 16,777,216
#   fc8 4,096·1,000+1,000 = 4,097,000     MACs 4,096,000
ALEXNET_PARAMS = 34_944 + 614_656 + 885_120 + 1_327_488 + 884_992 + 37_752_832 + 16_781_312 + 4_097_000
ALEXNET_MACS = (105_415_200 + 447_897_600 + 149_520_384 + 224_280_576 + 149_520_384
                + 37_748_736 + 16_777_216 + 4_096_000)
RESNET50_PARAMS, RESNET50_MACS = 25_557_032, 4_089_184_256  # torchvision / fvcore


def run(*args: str):
    return runner.invoke(app, list(args))


def one_error_line(result) -> str:
    """The error output must be exactly one line, starting with our prefix, and no traceback."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("cnncalc: error: "), lines[0]
    assert "Traceback" not in result.output
    return lines[0]


def test_hand_counts_add_up_to_the_issue_figures():
    assert ALEXNET_PARAMS == 62_378_344
    assert ALEXNET_MACS == 1_135_256_096


# --------------------------------------------------------------------------------------------
# table


def test_table_json_contract():
    result = run("table", "alexnet", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["spec"] == "alexnet"
    assert data["input"] == [3, 227, 227]
    assert data["batch"] == 1
    assert data["totals"]["params"] == ALEXNET_PARAMS
    assert data["totals"]["trainable_params"] == ALEXNET_PARAMS
    assert data["totals"]["buffers"] == 0
    assert data["totals"]["macs"] == ALEXNET_MACS
    assert data["totals"]["param_bytes"] == 4 * ALEXNET_PARAMS
    assert data["warnings"] == []
    for row in data["layers"]:
        for key in ("path", "kind", "output", "params", "macs", "rf", "activation_bytes"):
            assert key in row
        assert all(isinstance(d, int) for d in row["output"])
        assert isinstance(row["rf"], int)
    by_path = {row["path"]: row for row in data["layers"]}
    assert by_path["conv1"]["output"] == [96, 55, 55]
    assert by_path["conv1"]["macs"] == 105_415_200
    assert by_path["conv1"]["rf"] == 11
    assert by_path["pool5"]["output"] == [256, 6, 6]
    assert by_path["flatten"]["output"] == [9216]
    # activation bytes of conv1: 96·55·55 floats of 4 bytes
    assert by_path["conv1"]["activation_bytes"] == 96 * 55 * 55 * 4
    assert sum(r["activation_bytes"] for r in data["layers"]) == data["totals"]["activation_bytes"]


def test_table_json_warns_at_alexnet_conv1_for_224():
    data = json.loads(run("table", "alexnet", "--input", "3x224x224", "--format", "json").stdout)
    first = data["warnings"][0]
    assert first["path"] == "conv1"
    assert first["severity"] == "warning"
    # (224 − 11)/4 = 213/4 = 53.25: one input row and one column are never read
    assert {f["quotient"] for f in first["floors"]} == {"213/4"}
    assert {f["ignored_input"] for f in first["floors"]} == {1}
    assert "53.25" in first["message"]


@pytest.mark.parametrize("format", ["table", "json", "csv", "markdown"])
def test_warnings_go_to_stderr_in_every_format(format):
    result = run("table", "alexnet", "--input", "3x224x224", "--format", format)
    assert result.exit_code == 0
    assert "warning: conv1" in result.stderr and "53.25" in result.stderr
    assert "warning:" not in result.stdout.replace('"warnings"', "")
    quiet = run("table", "alexnet", "--input", "3x224x224", "--format", format, "--quiet")
    assert quiet.stderr == "" and quiet.stdout == result.stdout


def test_compare_memory_and_reconcile_warn_on_stderr_too():
    result = run("compare", "alexnet", "alexnet-2gpu", "--input", "3x224x224")
    assert result.stderr.startswith("warning: alexnet: 4 layer(s) floor a division")
    for command in (["memory", "alexnet"], ["reconcile", "alexnet"]):
        result = run(*command, "--input", "3x224x224")
        assert "warning: conv1" in result.stderr, command
        assert run(*command, "--input", "3x224x224", "-q").stderr == ""


def test_spec_from_stdin():
    text = (ROOT / "specs" / "lenet5.yaml").read_text()
    result = runner.invoke(app, ["table", "-", "--format", "json"], input=text)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["totals"]["params"] == 61706
    both = runner.invoke(app, ["compare", "-", "-", "--format", "json"], input=text)
    assert both.exit_code == 0, both.output


def test_channels_last_input_is_refused_with_a_hint():
    result = run("table", "resnet50", "--input", "224x224x3")
    assert result.exit_code == 2
    assert one_error_line(result).endswith("--input 3x224x224")
    assert "channels first" in result.stderr


def test_csv_has_run_columns_and_integer_shapes():
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(run("table", "lenet5", "-b", "2", "-f", "csv").stdout)))
    first = rows[0]
    assert (first["spec"], first["batch"], first["dtype"]) == ("lenet5", "2", "fp32")
    assert first["output"] == "6x28x28"  # as before
    assert [first[f"output_{a}"] for a in "chw"] == ["6", "28", "28"]
    assert [first[f"input_{a}"] for a in "chw"] == ["1", "32", "32"]
    last = rows[-1]
    assert (last["output_c"], last["output_h"], last["output_w"]) == ("10", "", "")


def test_symbolic_csv_has_one_expression_per_axis():
    import csv
    import io

    out = run("table", "alexnet", "--input", "3xHxW", "-f", "csv", "-d", "1").stdout
    first = next(csv.DictReader(io.StringIO(out)))
    assert first["output_c"] == "96"
    assert first["output_h"] == "floor(H/4 - 11/4) + 1"
    assert first["output_w"] == "floor(W/4 - 11/4) + 1"


def test_columns_choose_and_order_the_table():
    result = run("table", "lenet5", "--columns", "macs%,params,params%")
    header = result.stdout.splitlines()[1].split()
    assert header == ["Layer", "MACs", "%", "Params", "Params", "%"]
    assert "100%" in result.stdout
    bad = run("table", "lenet5", "--columns", "params,flops")
    assert bad.exit_code == 2 and "unknown column 'flops'" in one_error_line(bad)


def test_table_depth_collapses_blocks_and_rows_sum_to_totals():
    data = json.loads(run("table", "resnet50", "--depth", "1", "--format", "json").stdout)
    paths = [r["path"] for r in data["layers"]]
    assert paths == ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4",
                     "avgpool", "flatten", "fc"]
    assert sum(r["params"] for r in data["layers"]) == RESNET50_PARAMS
    assert sum(r["macs"] for r in data["layers"]) == RESNET50_MACS
    assert data["depth"] == 1


def test_table_batch_scales_macs_and_activations_not_params():
    one = json.loads(run("table", "resnet50", "--format", "json").stdout)["totals"]
    eight = json.loads(run("table", "resnet50", "--batch", "8", "--format", "json").stdout)["totals"]
    assert eight["macs"] == 8 * RESNET50_MACS
    assert eight["activation_bytes"] == 8 * one["activation_bytes"]
    assert eight["params"] == one["params"] == RESNET50_PARAMS


def test_table_dtype_changes_bytes():
    fp16 = json.loads(run("table", "alexnet", "--dtype", "fp16", "--format", "json").stdout)
    assert fp16["totals"]["param_bytes"] == 2 * ALEXNET_PARAMS


def test_table_human_units_and_footer():
    result = run("table", "alexnet")
    assert result.exit_code == 0
    out = result.stdout
    assert "62.4M" in out  # 62,378,344 params
    assert "1.14G" in out  # 1,135,256,096 MACs
    assert "MACs: one per multiply-accumulate of conv and linear layers" in out
    assert "96×55×55" in out


def test_table_exact_integers():
    out = run("table", "alexnet", "--exact").stdout
    assert "62,378,344" in out
    assert "1,135,256,096" in out
    assert "105,415,200" in out


def test_table_csv_has_a_line_per_row():
    out = run("table", "alexnet", "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["path"] for r in rows][:4] == ["conv1", "relu1", "norm1", "pool1"]
    assert sum(int(r["params"]) for r in rows) == ALEXNET_PARAMS
    assert rows[0]["output"] == "96x55x55"


def test_table_markdown():
    out = run("table", "lenet5", "--format", "markdown", "--exact").stdout
    assert out.startswith("| Layer | Kind |")
    assert "| **Total** |" in out
    # LeNet-5 course version: 156 + 2,416 + 48,120 + 10,164 + 850 = 61,706 params
    assert "61,706" in out


def test_table_reads_a_user_spec_file(tmp_path: Path):
    spec = tmp_path / "mine.yaml"
    spec.write_text(textwrap.dedent("""\
        input: 3x32x32
        layers:
          - conv: {out: 16, kernel: 3, padding: 1}
          - relu
          - global_avgpool
          - flatten
          - linear: {out: 10}
    """))
    data = json.loads(run("table", str(spec), "--format", "json").stdout)
    assert data["spec"] == "mine"
    # conv 3·3·3·16 + 16 = 448; linear 16·10 + 10 = 170
    assert data["totals"]["params"] == 448 + 170
    # conv MACs 32·32·16·27 = 442,368; linear 160
    assert data["totals"]["macs"] == 32 * 32 * 16 * 27 + 160
    assert [r["path"] for r in data["layers"]] == ["0", "1", "2", "3", "4"]


# --------------------------------------------------------------------------------------------
# list and compare


def test_list_json_names_every_zoo_spec():
    data = json.loads(run("list", "--format", "json").stdout)
    assert [d["name"] for d in data] == zoo_names()
    by_name = {d["name"]: d for d in data}
    assert by_name["alexnet"]["params"] == ALEXNET_PARAMS
    assert by_name["resnet50"]["macs"] == RESNET50_MACS
    assert by_name["vgg16"]["params"] == 138_357_544  # torchvision


def test_list_table_shows_titles():
    out = run("list").stdout
    assert "AlexNet" in out and "ResNet-152" in out


def test_compare_inception_5x5_branch():
    # naive 5×5 path: 28·28·(5·5·192)·32 = 120,422,400
    # bottleneck:     28·28·(192·16 + 5·5·16·32) = 28·28·15,872 = 12,443,648
    result = run("compare", "inception-naive", "inception-bottleneck", "--exact")
    assert result.exit_code == 0, result.output
    line = next(l for l in result.stdout.splitlines() if l.startswith("inception.b3 "))
    assert "120,422,400" in line and "12,443,648" in line
    assert "÷9.68" in line  # 120,422,400 / 12,443,648 ≈ 9.68


def test_compare_human_units():
    out = run("compare", "inception-naive", "inception-bottleneck").stdout
    line = next(l for l in out.splitlines() if l.startswith("inception.b3 "))
    assert "120M" in line and "12.4M" in line


def test_compare_json():
    data = json.loads(run("compare", "inception-naive", "inception-bottleneck",
                          "--format", "json").stdout)
    assert [s["spec"] for s in data["specs"]] == ["inception-naive", "inception-bottleneck"]
    assert data["specs"][0]["totals"]["macs"] == 303_464_448  # 28·28·387,072
    assert data["specs"][1]["totals"]["macs"] == 128_049_152  # 28·28·163,328
    b3 = next(r for r in data["rows"] if r["path"] == "inception.b3")
    assert b3["by_spec"]["inception-naive"]["macs"] == 120_422_400
    assert b3["by_spec"]["inception-bottleneck"]["macs"] == 12_443_648


def test_compare_csv_and_markdown():
    out = run("compare", "resnet18", "resnet34", "--format", "csv", "--depth", "1").stdout
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["path", "resnet18_macs", "resnet34_macs", "resnet18_params", "resnet34_params"]
    assert rows[1] == ["total", "1814073344", "3663761408", "11689512", "21797672"]
    md = run("compare", "resnet18", "resnet34", "--format", "markdown").stdout
    assert md.startswith("| | resnet18 | resnet34 |") or md.startswith("|  | resnet18 | resnet34 |")


# --------------------------------------------------------------------------------------------
# Version, help, errors


def test_version():
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"cnncalc {__version__}"


def test_convention_choices_are_the_conventions():
    """cli writes the names out (so parsing options does not import the counting rules)."""
    from cnncalc import cli
    from cnncalc.conventions import names

    assert list(cli.CONVENTIONS) == names()


@pytest.mark.parametrize("command", ["table", "list", "compare"])
def test_help_has_an_example(command: str):
    result = run(command, "--help")
    assert result.exit_code == 0
    assert "Example: cnncalc" in result.stdout


@pytest.mark.parametrize("args, fragment", [
    (["table", "alexnt"], "did you mean alexnet"),
    (["table", "resnet5"], "did you mean resnet50"),
    (["table", "alexnet", "--input", "3x2x"], "--input"),
    (["table", "alexnet", "--input", "0x224x224"], "--input"),
    (["table", "alexnet", "--batch", "0"], "--batch"),
    (["table", "alexnet", "--format", "xml"], "--format"),
    (["table", "alexnet", "--depth", "0"], "--depth"),
    (["table", "alexnet", "--nope"], "--nope"),
    (["compare", "alexnet"], "at least two"),
    (["table", "no/such/file.yaml"], "no such file"),
    (["frobnicate"], "frobnicate"),
    (["table", "alexnet", "--input", "3x11x11"], "layer pool1"),
])
def test_user_errors_are_one_line_with_status_2(args, fragment):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert fragment in one_error_line(result)


def test_bad_spec_names_file_line_and_layer(tmp_path: Path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("input: 3x32x32\nlayers:\n  - conv: {out: 8, kernel: three}\n")
    result = run("table", str(spec))
    assert result.exit_code == 2
    line = one_error_line(result)
    assert f"{spec}:3:" in line
    assert "layer 0" in line
    assert "kernel" in line


def test_directory_is_an_error(tmp_path: Path):
    result = run("table", str(tmp_path) + "/")
    assert result.exit_code == 2
    assert "directory" in one_error_line(result)


def test_not_utf8_is_an_error(tmp_path: Path):
    spec = tmp_path / "latin1.yaml"
    spec.write_bytes("input: 3x32x32 # caf\xe9\nlayers: [relu]\n".encode("latin-1"))
    result = run("table", str(spec))
    assert result.exit_code == 2
    assert "UTF-8" in one_error_line(result)


# --------------------------------------------------------------------------------------------
# A real process: the console script's module, no torch imported


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("args", [["table", "resnet152"], ["list"], ["import", "--help"],
                                  ["compare", "inception-naive", "inception-bottleneck"]])
def test_commands_never_import_torch(args):
    code = textwrap.dedent(f"""
        import atexit, sys
        heavy = ("torch", "fvcore", "sympy", "numpy", "onnx")
        atexit.register(lambda: sys.stderr.write(
            "HEAVY:" + ",".join(sorted({{m.split('.')[0] for m in sys.modules}} & set(heavy))) + "\\n"))
        sys.argv = ["cnncalc", *{args!r}]
        from cnncalc.cli import main
        main()
    """)
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY:\n" in proc.stderr, proc.stderr


def test_python_dash_m_runs_and_errors_cleanly():
    proc = subprocess.run([sys.executable, "-m", "cnncalc", "table", "nosuchnet"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith("cnncalc: error: no zoo spec or file named 'nosuchnet'")
    assert proc.stderr.count("\n") == 1
    ok = subprocess.run([sys.executable, "-m", "cnncalc", "table", "lenet5", "--exact"],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0
    assert "61,706" in ok.stdout


def test_show_prints_a_zoo_spec_to_copy(tmp_path):
    result = run("show", "lenet5")
    assert result.exit_code == 0
    assert result.stdout.startswith("# lenet5: ")
    assert "params 61,706" in result.stdout
    assert (ROOT / "specs" / "lenet5.yaml").read_text() in result.stdout
    copy = tmp_path / "mine.yaml"
    copy.write_text(result.stdout)  # the comments keep it a valid spec
    assert json.loads(run("table", str(copy), "-f", "json").stdout)["totals"]["params"] == 61706
