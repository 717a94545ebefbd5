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
    __slots__ = ("token", "platform", "client_name", "nonce")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    CLIENT_NAME_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    token: str
    platform: str
    client_name: str
    nonce: str
    def __init__(self, token: _Optional[str] = ..., platform: _Optional[str] = ..., client_name: _Optional[str] = ..., nonce: _Optional[str] = ...) -> None: ...

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
    __slots__ = ("task_id", "round_id", "round", "model_version", "model_spec_json", "tensors", "model_bytes", "plan", "deadline_unix_ms", "secagg", "trainable")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ROUND_ID_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_SPEC_JSON_FIELD_NUMBER: _ClassVar[int]
    TENSORS_FIELD_NUMBER: _ClassVar[int]
    MODEL_BYTES_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    SECAGG_FIELD_NUMBER: _ClassVar[int]
    TRAINABLE_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    round_id: int
    round: int
    model_version: int
    model_spec_json: str
    tensors: _containers.RepeatedCompositeFieldContainer[TensorSpec]
    model_bytes: int
    plan: TrainingPlan
    deadline_unix_ms: int
    secagg: SecAggPlan
    trainable: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, task_id: _Optional[str] = ..., round_id: _Optional[int] = ..., round: _Optional[int] = ..., model_version: _Optional[int] = ..., model_spec_json: _Optional[str] = ..., tensors: _Optional[_Iterable[_Union[TensorSpec, _Mapping]]] = ..., model_bytes: _Optional[int] = ..., plan: _Optional[_Union[TrainingPlan, _Mapping]] = ..., deadline_unix_ms: _Optional[int] = ..., secagg: _Optional[_Union[SecAggPlan, _Mapping]] = ..., trainable: _Optional[_Iterable[str]] = ...) -> None: ...

class SecAggPlan(_message.Message):
    __slots__ = ("neighbours", "threshold", "clip", "max_clients", "dp_clip", "dp_noise_stddev", "dp_min_clients", "dp_noise_multiplier", "format")
    NEIGHBOURS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    CLIP_FIELD_NUMBER: _ClassVar[int]
    MAX_CLIENTS_FIELD_NUMBER: _ClassVar[int]
    DP_CLIP_FIELD_NUMBER: _ClassVar[int]
    DP_NOISE_STDDEV_FIELD_NUMBER: _ClassVar[int]
    DP_MIN_CLIENTS_FIELD_NUMBER: _ClassVar[int]
    DP_NOISE_MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    neighbours: int
    threshold: int
    clip: float
    max_clients: int
    dp_clip: float
    dp_noise_stddev: float
    dp_min_clients: int
    dp_noise_multiplier: float
    format: int
    def __init__(self, neighbours: _Optional[int] = ..., threshold: _Optional[int] = ..., clip: _Optional[float] = ..., max_clients: _Optional[int] = ..., dp_clip: _Optional[float] = ..., dp_noise_stddev: _Optional[float] = ..., dp_min_clients: _Optional[int] = ..., dp_noise_multiplier: _Optional[float] = ..., format: _Optional[int] = ...) -> None: ...

class TrainingPlan(_message.Message):
    __slots__ = ("epochs", "batch_size", "lr", "optimizer", "momentum", "proximal_mu", "logit_adjustment", "steps", "holdout", "score_only")
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    LR_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZER_FIELD_NUMBER: _ClassVar[int]
    MOMENTUM_FIELD_NUMBER: _ClassVar[int]
    PROXIMAL_MU_FIELD_NUMBER: _ClassVar[int]
    LOGIT_ADJUSTMENT_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    HOLDOUT_FIELD_NUMBER: _ClassVar[int]
    SCORE_ONLY_FIELD_NUMBER: _ClassVar[int]
    epochs: int
    batch_size: int
    lr: float
    optimizer: str
    momentum: float
    proximal_mu: float
    logit_adjustment: bool
    steps: int
    holdout: float
    score_only: bool
    def __init__(self, epochs: _Optional[int] = ..., batch_size: _Optional[int] = ..., lr: _Optional[float] = ..., optimizer: _Optional[str] = ..., momentum: _Optional[float] = ..., proximal_mu: _Optional[float] = ..., logit_adjustment: _Optional[bool] = ..., steps: _Optional[int] = ..., holdout: _Optional[float] = ..., score_only: _Optional[bool] = ...) -> None: ...

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
    __slots__ = ("credential", "task_id", "round_id", "num_examples", "tensors", "metrics", "decline")
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
    DECLINE_FIELD_NUMBER: _ClassVar[int]
    credential: str
    task_id: str
    round_id: int
    num_examples: int
    tensors: _containers.RepeatedCompositeFieldContainer[TensorSpec]
    metrics: _containers.ScalarMap[str, float]
    decline: str
    def __init__(self, credential: _Optional[str] = ..., task_id: _Optional[str] = ..., round_id: _Optional[int] = ..., num_examples: _Optional[int] = ..., tensors: _Optional[_Iterable[_Union[TensorSpec, _Mapping]]] = ..., metrics: _Optional[_Mapping[str, float]] = ..., decline: _Optional[str] = ...) -> None: ...

class UploadUpdateResponse(_message.Message):
    __slots__ = ("status", "message")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    status: UpdateStatus
    message: str
    def __init__(self, status: _Optional[_Union[UpdateStatus, str]] = ..., message: _Optional[str] = ...) -> None: ...

class AdvertiseKeysRequest(_message.Message):
    __slots__ = ("credential", "task_id", "round_id", "encryption_key", "mask_key", "decline")
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ROUND_ID_FIELD_NUMBER: _ClassVar[int]
    ENCRYPTION_KEY_FIELD_NUMBER: _ClassVar[int]
    MASK_KEY_FIELD_NUMBER: _ClassVar[int]
    DECLINE_FIELD_NUMBER: _ClassVar[int]
    credential: str
    task_id: str
    round_id: int
    encryption_key: bytes
    mask_key: bytes
    decline: str
    def __init__(self, credential: _Optional[str] = ..., task_id: _Optional[str] = ..., round_id: _Optional[int] = ..., encryption_key: _Optional[bytes] = ..., mask_key: _Optional[bytes] = ..., decline: _Optional[str] = ...) -> None: ...

class Peer(_message.Message):
    __slots__ = ("index", "encryption_key", "mask_key")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    ENCRYPTION_KEY_FIELD_NUMBER: _ClassVar[int]
    MASK_KEY_FIELD_NUMBER: _ClassVar[int]
    index: int
    encryption_key: bytes
    mask_key: bytes
    def __init__(self, index: _Optional[int] = ..., encryption_key: _Optional[bytes] = ..., mask_key: _Optional[bytes] = ...) -> None: ...

class AdvertiseKeysResponse(_message.Message):
    __slots__ = ("retry_after_ms", "index", "neighbours")
    RETRY_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    NEIGHBOURS_FIELD_NUMBER: _ClassVar[int]
    retry_after_ms: int
    index: int
    neighbours: _containers.RepeatedCompositeFieldContainer[Peer]
    def __init__(self, retry_after_ms: _Optional[int] = ..., index: _Optional[int] = ..., neighbours: _Optional[_Iterable[_Union[Peer, _Mapping]]] = ...) -> None: ...

class EncryptedShare(_message.Message):
    __slots__ = ("sender", "receiver", "ciphertext")
    SENDER_FIELD_NUMBER: _ClassVar[int]
    RECEIVER_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    sender: int
    receiver: int
    ciphertext: bytes
    def __init__(self, sender: _Optional[int] = ..., receiver: _Optional[int] = ..., ciphertext: _Optional[bytes] = ...) -> None: ...

class ShareKeysRequest(_message.Message):
    __slots__ = ("credential", "task_id", "round_id", "shares")
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ROUND_ID_FIELD_NUMBER: _ClassVar[int]
    SHARES_FIELD_NUMBER: _ClassVar[int]
    credential: str
    task_id: str
    round_id: int
    shares: _containers.RepeatedCompositeFieldContainer[EncryptedShare]
    def __init__(self, credential: _Optional[str] = ..., task_id: _Optional[str] = ..., round_id: _Optional[int] = ..., shares: _Optional[_Iterable[_Union[EncryptedShare, _Mapping]]] = ...) -> None: ...

class ShareKeysResponse(_message.Message):
    __slots__ = ("retry_after_ms", "shares")
    RETRY_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    SHARES_FIELD_NUMBER: _ClassVar[int]
    retry_after_ms: int
    shares: _containers.RepeatedCompositeFieldContainer[EncryptedShare]
    def __init__(self, retry_after_ms: _Optional[int] = ..., shares: _Optional[_Iterable[_Union[EncryptedShare, _Mapping]]] = ...) -> None: ...

class RevealedShare(_message.Message):
    __slots__ = ("owner", "mask_key", "share")
    OWNER_FIELD_NUMBER: _ClassVar[int]
    MASK_KEY_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    owner: int
    mask_key: bool
    share: bytes
    def __init__(self, owner: _Optional[int] = ..., mask_key: _Optional[bool] = ..., share: _Optional[bytes] = ...) -> None: ...

class UnmaskRequest(_message.Message):
    __slots__ = ("credential", "task_id", "round_id", "shares")
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ROUND_ID_FIELD_NUMBER: _ClassVar[int]
    SHARES_FIELD_NUMBER: _ClassVar[int]
    credential: str
    task_id: str
    round_id: int
    shares: _containers.RepeatedCompositeFieldContainer[RevealedShare]
    def __init__(self, credential: _Optional[str] = ..., task_id: _Optional[str] = ..., round_id: _Optional[int] = ..., shares: _Optional[_Iterable[_Union[RevealedShare, _Mapping]]] = ...) -> None: ...

class UnmaskResponse(_message.Message):
    __slots__ = ("retry_after_ms", "dropped", "survivors", "done")
    RETRY_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    SURVIVORS_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    retry_after_ms: int
    dropped: _containers.RepeatedScalarFieldContainer[int]
    survivors: _containers.RepeatedScalarFieldContainer[int]
    done: bool
    def __init__(self, retry_after_ms: _Optional[int] = ..., dropped: _Optional[_Iterable[int]] = ..., survivors: _Optional[_Iterable[int]] = ..., done: _Optional[bool] = ...) -> None: ...
