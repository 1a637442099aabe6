from __future__ import annotations

import json

import pytest

from verl_video.evaluation.predictions import PredictionFileError, PredictionWriter, read_predictions, recover


@pytest.mark.parametrize("line, message", [
    ("{not json", "p.jsonl:2: invalid JSON"),
    ('{"prediction": [1, 2]}', "p.jsonl:2: missing field 'timestamps'"),
    ('{"timestamps": [1, 2]}', "p.jsonl:2: needs a field 'prediction'"),
    ('{"timestamps": [1, 2], "prediction": [1]}', "p.jsonl:2: field 'prediction' must be [start, end]"),
    ('{"timestamps": [1, 2], "prediction": ["a", 2]}', "p.jsonl:2: field 'prediction[0]' must be a number"),
    ('{"timestamps": [[1, 2], [3]], "prediction": [1, 2]}', "p.jsonl:2: field 'timestamps[1]'"),
    ('{"timestamps": [1, 2], "response": 3}', "p.jsonl:2: field 'response' must be a string"),
    ('{"timestamps": [1, 2], "prediction": [1, 2], "duration": "long"}', "p.jsonl:2: field 'duration'"),
    ("[1, 2]", "p.jsonl:2: expected a JSON object"),
])
def test_malformed_lines_name_file_line_and_field(tmp_path, line, message):
    path = tmp_path / "p.jsonl"
    path.write_text('{"timestamps": [1, 2], "prediction": [1, 2]}\n' + line + "\n")
    with pytest.raises(PredictionFileError, match=message.replace("[", r"\[").replace("]", r"\]")):
        read_predictions(str(path))


def test_accepted_shapes(tmp_path, write_jsonl):
    path = write_jsonl(tmp_path / "p.jsonl", [
        {"timestamps": [1, 2], "prediction": None},
        {"timestamps": [[1, 2], [5, 6]], "response": "<answer>1 to 2</answer>", "duration": 10, "qsemtype": "x"},
        {"id": "z", "timestamps": ["1", "2"], "prediction": ["1.5", 2], "response": None},
    ])
    lines = read_predictions(str(path))
    assert [line.id for line in lines] == ["p.jsonl:1", "p.jsonl:2", "z"]
    assert lines[0].prediction is None and lines[0].has_prediction and not lines[0].has_response
    assert lines[1].timestamps == [[1.0, 2.0], [5.0, 6.0]] and lines[1].duration == 10.0
    assert lines[1].fields["qsemtype"] == "x"
    assert lines[2].prediction == (1.5, 2.0)


def test_empty_file_is_an_error(tmp_path):
    (tmp_path / "e.jsonl").write_text("\n")
    with pytest.raises(PredictionFileError, match="no predictions"):
        read_predictions(str(tmp_path / "e.jsonl"))


def test_writer_appends_and_recover_drops_a_torn_line(tmp_path):
    path = str(tmp_path / "out.jsonl")
    with PredictionWriter(path) as writer:
        writer.write({"id": "a", "x": 1})
        writer.write({"id": "b", "x": 2})
    with open(path, "a") as f:
        f.write('{"id": "c", "x"')  # a crash in the middle of a write
    done = recover(path)
    assert list(done) == ["a", "b"]
    with open(path) as f:
        assert [json.loads(line)["id"] for line in f] == ["a", "b"]
    assert recover(str(tmp_path / "missing.jsonl")) == {}
