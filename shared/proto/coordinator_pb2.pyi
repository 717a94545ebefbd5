from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UpdateStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    UPDATE_STATUS_UNSPECIFIED: _ClassVar[UpdateStatus]
    UPDATE_STATUS_ACCEPTED: _ClassVar[UpdateStatus]
    UPDATE_STATUS_DISCARDED: _ClassVar[UpdateStatus]
UPDATE_STATUS_UNSPECIFIED: UpdateStatus
UPDATE_STATUS_ACCEPTED: UpdateStatus
UPDATE_STATUS_DISCARDED: UpdateStatus

class TensorSpec(_message.Message):
    __slots__ = ("name", "dtype", "shape")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    dtype: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, name: _Optional[str] = ..., dtype: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ...) -> None: ...

class EnrollRequest(_message.Message):
    __slots__ = ("token", "platform", "client_name")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    CLIENT_NAME_FIELD_NUMBER: _ClassVar[int]
    token: str
    platform: str
    client_name: str
    def __init__(self, token: _Optional[str] = ..., platform: _Optional[str] = ..., client_name: _Optional[str] = ...) -> None: ...

class EnrollResponse(_message.Message):
    __slots__ = ("client_id", "credential")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    credential: str
    def __init__(self, client_id: _Optional[str] = ..., credential: _Optional[str] = ...) -> None: ...

class CheckInRequest(_message.Message):
    __slots__ = ("credential", "platform")
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    credential: str
    platform: str
    def __init__(self, credential: _Optional[str] = ..., platform: _Optional[str] = ...) -> None: ...

class CheckInResponse(_message.Message):
    __slots__ = ("assignment", "retry")
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    RETRY_FIELD_NUMBER: _ClassVar[int]
    assignment: Assignment
    retry: RetryAfter
    def __init__(self, assignment: _Optional[_Union[Assignment, _Mapping]] = ..., retry: _Optional[_Union[RetryAfter, _Mapping]] = ...) -> None: ...

class RetryAfter(_message.Message):
    __slots__ = ("retry_after_ms", "reason", "finished")
    RETRY_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    retry_after_ms: int
    reason: str
    finished: bool
    def __init__(self, retry_after_ms: _Optional[int] = ..., reason: _Optional[str] = ..., finished: _Optional[bool] = ...) -> None: ...

class Assignment(_message.Message):
    __slots__ = ("task_id", "round_id", "round", "model_version", "model_spec_json", "tensors", "model_bytes", "plan", "deadline_unix_ms")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ROUND_ID_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_SPEC_JSON_FIELD_NUMBER: _ClassVar[int]
    TENSORS_FIELD_NUMBER: _ClassVar[int]
    MODEL_BYTES_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    round_id: int
    round: int
    model_version: int
    model_spec_json: str
    tensors: _containers.RepeatedCompositeFieldContainer[TensorSpec]
    model_bytes: int
    plan: TrainingPlan
    deadline_unix_ms: int
    def __init__(self, task_id: _Optional[str] = ..., round_id: _Optional[int] = ..., round: _Optional[int] = ..., model_version: _Optional[int] = ..., model_spec_json: _Optional[str] = ..., tensors: _Optional[_Iterable[_Union[TensorSpec, _Mapping]]] = ..., model_bytes: _Optional[int] = ..., plan: _Optional[_Union[TrainingPlan, _Mapping]] = ..., deadline_unix_ms: _Optional[int] = ...) -> None: ...

class TrainingPlan(_message.Message):
    __slots__ = ("epochs", "batch_size", "lr", "optimizer", "momentum", "proximal_mu")
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    LR_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZER_FIELD_NUMBER: _ClassVar[int]
    MOMENTUM_FIELD_NUMBER: _ClassVar[int]
    PROXIMAL_MU_FIELD_NUMBER: _ClassVar[int]
    epochs: int
    batch_size: int
    lr: float
    optimizer: str
    momentum: float
    proximal_mu: float
    def __init__(self, epochs: _Optional[int] = ..., batch_size: _Optional[int] = ..., lr: _Optional[float] = ..., optimizer: _Optional[str] = ..., momentum: _Optional[float] = ..., proximal_mu: _Optional[float] = ...) -> None: ...

class DownloadModelRequest(_message.Message):
    __slots__ = ("credential", "task_id", "round_id")
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ROUND_ID_FIELD_NUMBER: _ClassVar[int]
    credential: str
    task_id: str
    round_id: int
    def __init__(self, credential: _Optional[str] = ..., task_id: _Optional[str] = ..., round_id: _Optional[int] = ...) -> None: ...

class ModelChunk(_message.Message):
    __slots__ = ("offset", "data")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    offset: int
    data: bytes
    def __init__(self, offset: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class UpdateChunk(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: UpdateHeader
    data: bytes
    def __init__(self, header: _Optional[_Union[UpdateHeader, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class UpdateHeader(_message.Message):
    __slots__ = ("credential", "task_id", "round_id", "num_examples", "tensors", "metrics")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ROUND_ID_FIELD_NUMBER: _ClassVar[int]
    NUM_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    TENSORS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    credential: str
    task_id: str
    round_id: int
    num_examples: int
    tensors: _containers.RepeatedCompositeFieldContainer[TensorSpec]
    metrics: _containers.ScalarMap[str, float]
    def __init__(self, credential: _Optional[str] = ..., task_id: _Optional[str] = ..., round_id: _Optional[int] = ..., num_examples: _Optional[int] = ..., tensors: _Optional[_Iterable[_Union[TensorSpec, _Mapping]]] = ..., metrics: _Optional[_Mapping[str, float]] = ...) -> None: ...

class UploadUpdateResponse(_message.Message):
    __slots__ = ("status", "message")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    status: UpdateStatus
    message: str
    def __init__(self, status: _Optional[_Union[UpdateStatus, str]] = ..., message: _Optional[str] = ...) -> None: ...
