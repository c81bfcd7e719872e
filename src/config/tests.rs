//! The config's reading, validation and overrides, key by key, with the messages people see.

use super::*;
use crate::model::{ActivationKind, PoolingKind};

fn parse(text: &str) -> Result<TrainingConfig, ConfigError> {
    let config = TrainingConfig::parse(Path::new("test.json"), text)?;
    config
        .validate()
        .map_err(|e| e.in_file(Path::new("test.json")))?;
    Ok(config)
}

fn error(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn empty_object_gives_the_defaults() {
    assert_eq!(parse("{}").unwrap(), TrainingConfig::default());
}

#[test]
fn resolved_config_round_trips() {
    let config = TrainingConfig {
        optimizer: OptimizerConfig::Sgd(SgdSection::default()),
        lr_schedule: LrSchedule::Step(StepSection::default()),
        device: Some(BackendKind::Flex),
        ..TrainingConfig::default()
    };
    let text = serde_json::to_string_pretty(&config).unwrap();
    assert_eq!(parse(&text).unwrap(), config);
}

#[test]
fn sections_are_read() {
    let config = parse(
        r#"{"model": {"activation": "tanh", "pooling": "avg"},
            "optimizer": {"type": "sgd", "learning_rate": 0.05, "momentum": 0.5},
            "lr_schedule": {"type": "cosine", "min_lr": 0.001},
            "data": {"validation_size": 0, "train_limit": 100}}"#,
    )
    .unwrap();
    assert_eq!(config.model.activation, Some(ActivationKind::Tanh));
    assert_eq!(config.model.pooling, Some(PoolingKind::Avg));
    assert_eq!(config.optimizer.learning_rate(), 0.05);
    assert_eq!(
        config.lr_schedule,
        LrSchedule::Cosine(CosineSection { min_lr: 0.001 })
    );
    assert_eq!(
        config.data.validation_size,
        crate::data::SplitSize::Count(0)
    );
    assert_eq!(config.data.train_limit, Some(100));
}

#[test]
fn syntax_errors_say_not_json() {
    assert!(
        error("{").contains("test.json: not valid JSON"),
        "{}",
        error("{")
    );
    assert!(error("").contains("not valid JSON"));
    assert!(error("{} {}").contains("not valid JSON"));
}

/// A table of cases, one per way of getting a key wrong: long because the config is wide.
#[test]
fn errors_name_the_key() {
    let cases = [
        (r#"{"epoch": 3}"#, "test.json: epoch: unknown field `epoch`"),
        (
            r#"{"epochs": "3"}"#,
            "test.json: epochs: invalid type: string",
        ),
        (
            r#"{"batch_size": -1}"#,
            "test.json: batch_size: invalid value: integer `-1`, expected a whole number >= 1",
        ),
        (
            r#"{"num_workers": 1.5}"#,
            "num_workers: invalid type: floating point `1.5`, expected a whole number >= 0",
        ),
        (
            r#"{"optimizer": {"type": "adam", "beta_1": "high"}}"#,
            "optimizer.beta_1: invalid type: string \"high\", expected a number",
        ),
        (
            r#"{"model": {"activation": "gelu"}}"#,
            "model.activation: unknown variant `gelu`",
        ),
        (
            r#"{"model": {"pooling": "min"}}"#,
            "model.pooling: unknown variant `min`",
        ),
        (
            r#"{"model": {"variant": "lecun89"}}"#,
            "model.variant: unknown variant `lecun89`",
        ),
        (
            r#"{"augmentation": {"rotation_degrees": 95}}"#,
            "test.json: augmentation.rotation_degrees: must be in [0, 90), got 95",
        ),
        (
            r#"{"augmentation": {"elastic": {"sigma": 0}}}"#,
            "test.json: augmentation.elastic.sigma: must be in (0, 10], got 0",
        ),
        (
            r#"{"augmentation": {"shift": 2}}"#,
            "augmentation.shift: unknown field `shift`",
        ),
        (
            r#"{"optimizer": {"type": "rmsprop"}}"#,
            "optimizer.type: unknown type \"rmsprop\"",
        ),
        (
            r#"{"optimizer": {"learning_rate": 1}}"#,
            "optimizer: missing key \"type\"",
        ),
        (
            r#"{"optimizer": {"type": "adam", "lr": 1}}"#,
            "optimizer.lr: unknown field `lr`",
        ),
        (
            r#"{"optimizer": {"type": "sgd", "beta_1": 0.9}}"#,
            "optimizer.beta_1: unknown field",
        ),
        (
            r#"{"optimizer": {"type": "adam", "learning_rate": "x"}}"#,
            "optimizer.learning_rate: invalid type: string \"x\"",
        ),
        (
            r#"{"lr_schedule": {"type": "constant", "gamma": 1}}"#,
            "lr_schedule.gamma: unknown field",
        ),
        (
            r#"{"lr_schedule": {"type": "linear"}}"#,
            "lr_schedule.type: unknown type",
        ),
        (
            r#"{"data": {"folder": "x"}}"#,
            "data.folder: unknown field `folder`",
        ),
        (r#"{"device": "cuda"}"#, "device: unknown variant `cuda`"),
        (r#"[]"#, "not valid JSON: the top level must be an object"),
    ];
    for (text, expected) in cases {
        let err = error(text);
        assert!(
            err.contains(expected),
            "{text}: got `{err}`, want `{expected}`"
        );
    }
}

/// A table of cases, one per range check: long because every section checks its keys.
#[test]
fn out_of_range_values_name_the_key() {
    let cases = [
        (
            r#"{"optimizer": {"type": "adam", "learning_rate": 0}}"#,
            "optimizer.learning_rate: must be a positive",
        ),
        (
            r#"{"optimizer": {"type": "sgd", "learning_rate": -1}}"#,
            "optimizer.learning_rate: must be a positive",
        ),
        (
            r#"{"optimizer": {"type": "adam", "beta_1": 1.0}}"#,
            "optimizer.beta_1: must be in [0, 1)",
        ),
        (
            r#"{"optimizer": {"type": "adam", "beta_2": -0.1}}"#,
            "optimizer.beta_2: must be in [0, 1)",
        ),
        (
            r#"{"optimizer": {"type": "adam", "epsilon": 0}}"#,
            "optimizer.epsilon: must be a positive",
        ),
        (
            r#"{"optimizer": {"type": "adam", "weight_decay": -1}}"#,
            "optimizer.weight_decay: must be 0 or more",
        ),
        (
            r#"{"optimizer": {"type": "sgd", "momentum": 1.5}}"#,
            "optimizer.momentum: must be in [0, 1)",
        ),
        (
            r#"{"optimizer": {"type": "sgd", "dampening": 2}}"#,
            "optimizer.dampening: must be in [0, 1]",
        ),
        (
            r#"{"optimizer": {"type": "sgd", "momentum": 0, "nesterov": true}}"#,
            "optimizer.nesterov",
        ),
        (
            r#"{"lr_schedule": {"type": "step", "step_epochs": 0}}"#,
            "lr_schedule.step_epochs: must be at least 1",
        ),
        (
            r#"{"lr_schedule": {"type": "step", "gamma": 0}}"#,
            "lr_schedule.gamma: must be in (0, 1)",
        ),
        (
            r#"{"lr_schedule": {"type": "step", "gamma": 1}}"#,
            "lr_schedule.gamma: must be in (0, 1)",
        ),
        (
            r#"{"optimizer": {"type": "sgd", "learning_rate": 2}, "lr_schedule": {"type": "cosine"}}"#,
            "optimizer.learning_rate: must be at most 1",
        ),
        (
            r#"{"lr_schedule": {"type": "cosine", "min_lr": 1}}"#,
            "lr_schedule.min_lr: must be at least 0 and below",
        ),
        (
            r#"{"lr_schedule": {"type": "onecycle", "initial_lr": 0.01}}"#,
            "lr_schedule.initial_lr: must be above 0 and below optimizer.learning_rate",
        ),
        (
            r#"{"lr_schedule": {"type": "onecycle", "warmup_epochs": 0}}"#,
            "lr_schedule.warmup_epochs: must be a positive number",
        ),
        (
            r#"{"lr_schedule": {"type": "onecycle", "min_lr": 0.5}}"#,
            "lr_schedule.min_lr: must be at least 0 and below",
        ),
        (r#"{"epochs": 0}"#, "test.json: epochs: must be at least 1"),
        (
            r#"{"batch_size": 0}"#,
            "test.json: batch_size: must be at least 1",
        ),
        (
            r#"{"data": {"train_limit": 0}}"#,
            "data.train_limit: must be at least 1",
        ),
        (
            r#"{"data": {"test_limit": 0}}"#,
            "data.test_limit: must be at least 1",
        ),
    ];
    for (text, expected) in cases {
        let err = error(text);
        assert!(
            err.contains(expected),
            "{text}: got `{err}`, want `{expected}`"
        );
    }
}

#[test]
fn overrides_replace_values_and_are_checked() {
    let mut config = TrainingConfig::default();
    config
        .apply(&Overrides {
            epochs: Some(2),
            batch_size: Some(8),
            learning_rate: Some(0.5),
            seed: Some(9),
            device: Some(BackendKind::Flex),
            data_dir: Some("d".into()),
            artifact_dir: Some("a".into()),
            tensorboard: true,
            mlflow: Some("http://127.0.0.1:5000".into()),
        })
        .unwrap();
    assert_eq!((config.epochs, config.batch_size, config.seed), (2, 8, 9));
    assert!(config.tracking.tensorboard);
    let mlflow = config
        .tracking
        .mlflow
        .as_ref()
        .and_then(|m| m.uri.as_deref());
    assert_eq!(mlflow, Some("http://127.0.0.1:5000"));
    assert_eq!(config.optimizer.learning_rate(), 0.5);
    assert_eq!(config.data.dir, Some(PathBuf::from("d")));
    assert_eq!(config.run_dir("lenet"), PathBuf::from("a"));

    let err = config
        .apply(&Overrides {
            batch_size: Some(0),
            ..Overrides::default()
        })
        .unwrap_err();
    assert!(err.to_string().contains("batch_size"), "{err}");
}

#[test]
fn missing_file_is_reported_by_name() {
    let err = TrainingConfig::load(Path::new("no/such/config.json")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("no/such/config.json: cannot read config"),
        "{err}"
    );
}

#[test]
fn run_dir_defaults_to_the_config_name() {
    assert_eq!(config_name(Path::new("configs/smoke.json")), "smoke");
    assert_eq!(
        TrainingConfig::default().run_dir("smoke"),
        PathBuf::from("artifacts/smoke")
    );
}

#[test]
fn every_shipped_config_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut loaded = 0;
    for entry in fs::read_dir(&dir).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "json") {
            TrainingConfig::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            loaded += 1;
        }
    }
    assert!(loaded >= 8, "{loaded} configs");
}

#[test]
fn ema_and_the_newer_distortions_are_checked() {
    assert_eq!(
        error(r#"{"ema": {"decay": 1.0}}"#),
        "test.json: ema.decay: must be in (0, 1), got 1"
    );
    assert_eq!(
        error(r#"{"label_smoothing": 1.0}"#),
        "test.json: label_smoothing: must be at least 0 and below 1, got 1"
    );
    assert_eq!(
        error(r#"{"label_smoothing": -0.1}"#),
        "test.json: label_smoothing: must be at least 0 and below 1, got -0.1"
    );
    assert_eq!(
        error(r#"{"augmentation": {"stroke": 1.5}}"#),
        "test.json: augmentation.stroke: must be in [0, 1], got 1.5"
    );
    assert!(
        error(r#"{"augmentation": {"low_resolution": {"smallest": 12, "largest": 8}}}"#)
            .contains("smallest <= largest")
    );
    assert_eq!(
        error(r#"{"data": {"synthetic": {"fonts": [], "images": 5}}}"#),
        "test.json: data.synthetic.fonts: must name at least one font file"
    );
    assert!(error(r#"{"data": {"synthetic": {"images": 5}}}"#).contains("missing field `fonts`"));
}
