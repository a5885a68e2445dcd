"""
Dynamic batcher of the prediction service
"""

from __future__ import annotations

import typing

import numpy

__all__: list[str] = ["DynamicBatcher", "Ticket"]

class Ticket:
    """
    One submitted row: wait for its output row, or cancel it.
    """
    def cancel(self) -> bool:
        """
        Cancel a pending request; False if it already finished.
        """
    def done(self) -> bool: ...
    def result(self, timeout: typing.Any = None) -> numpy.ndarray:
        """
        Wait for the output row (1-D float32) and return it, or raise the request's error. timeout in seconds; None waits until the deadline given at submit (or forever).
        """
    @property
    def batch_size(self) -> int:
        """
        Rows of the batch it ran in (0 before it ran).
        """
    @property
    def id(self) -> int: ...
    @property
    def queue_time_us(self) -> int:
        """
        Microseconds queued before its batch ran (-1 before it ran).
        """
    @property
    def state(self) -> str: ...

class DynamicBatcher:
    """
    Gathers rows from many threads into batches for one model callable.
    """
    def __init__(
        self,
        model: typing.Any,
        n_features: typing.SupportsInt | typing.SupportsIndex,
        max_batch_size: typing.SupportsInt | typing.SupportsIndex = 64,
        max_queue_delay_us: typing.SupportsFloat | typing.SupportsIndex = 1000.0,
        max_queue_size: typing.SupportsInt | typing.SupportsIndex = 4096,
        n_workers: typing.SupportsInt | typing.SupportsIndex = 1,
        on_batch: typing.Any = None,
    ) -> None: ...
    def cancel_token(self, id: typing.SupportsInt | typing.SupportsIndex) -> bool:
        """
        Cancel a submit_token request that has not started; False if it already has.
        """
    def close(self, drain: bool = True) -> None:
        """
        Stop accepting rows; run (drain=True) or fail (drain=False) the queued ones; join.
        """
    def predict(self, row: numpy.ndarray, timeout: typing.Any = None) -> numpy.ndarray:
        """
        submit(row, timeout).result()
        """
    def stats(self) -> dict: ...
    def submit(
        self, row: numpy.ndarray, timeout: typing.Any = None, callback: typing.Any = None
    ) -> Ticket:
        """
        Queue one row; returns a Ticket. callback(ticket) runs on a batcher thread when the request finishes, whatever the outcome. Raises Overloaded when the queue is full.
        """
    def submit_token(self, row: typing.Any, token: typing.Any, timeout: typing.Any = None) -> int:
        """
        Queue one row (a list or tuple of numbers, or a 1-D array; finite) whose answer goes to on_batch(tokens, out, queue_us, failed) with `token`, once per batch; returns the request id. Raises ParameterError for a bad row, Overloaded when the queue is full.
        """
    @property
    def closed(self) -> bool: ...
    @property
    def max_batch_size(self) -> int: ...
    @property
    def max_queue_delay_us(self) -> int: ...
    @property
    def max_queue_size(self) -> int: ...
    @property
    def n_features(self) -> int: ...
    @property
    def n_workers(self) -> int: ...
