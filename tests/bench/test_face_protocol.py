"""Protocol S: tasks stay inside one fold, and the worker's decisions and crafted-face
attacks on real photos (face_recognition on sample_data/faces, real crypto)."""

from __future__ import annotations

import secrets
from pathlib import Path

import numpy as np

from vault.bench.face_dataset import EmbeddingTable
from vault.bench.face_protocol import (
    ATTACKS,
    SizeTask,
    init_worker,
    run_size_task,
    size_tasks,
    transaction_failures,
)
from vault.biometrics.embedding import FaceEncoder
from vault.biometrics.population import shipped
from vault.biometrics.template import TemplateParams

FACES = Path(__file__).resolve().parents[2] / "sample_data" / "faces"
OBAMA = ("obama2.jpg", "obama_test1.jpg", "obama.jpg")
CROWD = (
    "biden/biden.jpg", "biden/biden2.jpg", "kit_harington/john1.jpeg",
    "kit_harington/john2.jpeg", "rose_leslie/img1.jpg", "rose_leslie/img2.jpg",
    "alex_lacamoire/img1.jpg", "alex_lacamoire/test1.jpg",
)  # fmt: skip


def _table(people: dict[str, int], failed: frozenset[str] = frozenset()) -> EmbeddingTable:
    keys = [f"{p}/{p}_{i:04d}.jpg" for p, n in sorted(people.items()) for i in range(1, n + 1)]
    vectors = np.random.default_rng(0).normal(size=(len(keys), 128))
    status = ["no_face" if k in failed else "ok" for k in keys]
    return EmbeddingTable.build(keys, vectors, status, np.zeros(len(keys)))


def test_tasks_keep_every_attempt_inside_the_template_fold() -> None:
    people = {"a": 4, "b": 3, "c": 1, "d": 6, "e": 2}
    folds = {"a": 1, "b": 1, "c": 1, "d": 2, "e": 2}
    table = _table(people, failed=frozenset({"a/a_0002.jpg"}))
    tasks, refused = size_tasks(table, folds, impostors=100, rng=np.random.default_rng(0))
    assert refused == 1
    assert [t.person for t in tasks[1]] == ["a", "b", "d", "e"]
    assert [t.person for t in tasks[3]] == ["d"]  # a has 3 usable photos: none left to try
    for size, size_list in tasks.items():
        for task in size_list:
            assert len(task.enroll) == size
            mine = {table.index[k] for k in table.keys if k.startswith(task.person + "/")}
            assert set(task.enroll) | set(task.genuine) <= mine
            for i in task.impostor:
                other = table.keys[i].split("/")[0]
                assert other != task.person and folds[other] == task.fold
                assert table.status[i] == "ok"


def test_transaction_fails_only_when_every_attempt_fails() -> None:
    accepted = np.array([False, False, True, False, False, False, False, True])
    templates = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    # template 0: (F, F, T) ok, (F) failed; template 1: (F, F, F) failed, (T) ok
    assert transaction_failures(accepted, templates, 3) == (2, 4)
    assert transaction_failures(accepted, templates, 1) == (6, 8)


def test_worker_on_real_photos_opens_for_the_face_and_no_crafted_face_opens() -> None:
    encoder = FaceEncoder()
    names = [f"people/obama/{n}" for n in OBAMA] + [f"people/{n}" for n in CROWD]
    vectors = np.stack([encoder.encode((FACES / n).read_bytes()).vector for n in names])
    init_worker(vectors, TemplateParams(), secrets.token_bytes(32), shipped())
    task = SizeTask(
        size=2, fold=1, person="obama", enroll=[0, 1], genuine=[2],
        impostor=list(range(3, len(names))),
    )  # fmt: skip
    result = run_size_task(task)
    assert np.isfinite(result.genuine_score[0]) and result.genuine_score[0] > 0.2
    assert np.all(np.isneginf(result.impostor_score))
    assert len(result.attacks_opened) == len(ATTACKS) and not any(result.attacks_opened)
