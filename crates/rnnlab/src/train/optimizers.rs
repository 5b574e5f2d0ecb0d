//! Optimizers with Keras 3's update rules, defaults and gradient clipping, computed in float32 in Keras' order of
//! operations (keras/src/optimizers/{sgd,adam,rmsprop,base_optimizer}.py; docs/training-semantics.md).

use std::fmt;

use ndarray::{ArrayD, Zip};
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};

/// Which update rule, with its hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Rule {
    // Hyper-parameters are Python floats (doubles) in Keras: `1 - beta_1` is computed in double and only then
    // cast to float32, so they are kept as f64 here to give the same float32 coefficients.
    Sgd {
        momentum: f64,
        nesterov: bool,
    },
    Adam {
        beta_1: f64,
        beta_2: f64,
        epsilon: f64,
        amsgrad: bool,
    },
    RmsProp {
        rho: f64,
        momentum: f64,
        epsilon: f64,
        centered: bool,
    },
}

/// An optimizer and its state (Keras `keras.optimizers.SGD/Adam/RMSprop`).
///
/// The state (iteration count, momentums, velocities) is created at the first update, one slot set per weight in
/// `get_weights()` order, as Keras builds it.
///
/// ```
/// use rnnlab::Optimizer;
/// let adam = Optimizer::adam(0.01).beta_1(0.8).clipnorm(1.0);
/// assert_eq!(adam.name(), "adam");
/// assert_eq!(adam.learning_rate(), 0.01);
/// assert_eq!(Optimizer::from_name("rmsprop").unwrap().learning_rate(), 0.001); // Keras' default
/// ```
#[derive(Clone)]
pub struct Optimizer {
    rule: Rule,
    learning_rate: f32,
    clipnorm: Option<f32>,
    clipvalue: Option<f32>,
    global_clipnorm: Option<f32>,
    weight_decay: Option<f32>,
    iterations: u64,
    /// Per weight: the slot variables of the rule (momentum; m, v, v_hat; velocity, momentum, average_grad).
    slots: Vec<Vec<ArrayD<f32>>>,
}

impl fmt::Debug for Optimizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<{} learning_rate={}, iterations={}>",
            self.class_name(),
            self.learning_rate,
            self.iterations
        )
    }
}

impl PartialEq for Optimizer {
    fn eq(&self, o: &Optimizer) -> bool {
        self.rule == o.rule
            && self.learning_rate == o.learning_rate
            && self.clipnorm == o.clipnorm
            && self.clipvalue == o.clipvalue
            && self.global_clipnorm == o.global_clipnorm
            && self.weight_decay == o.weight_decay
    }
}

/// Every name [`Optimizer::from_name`] accepts.
pub const OPTIMIZER_NAMES: &[&str] = &["sgd", "adam", "rmsprop"];

impl Optimizer {
    fn with(rule: Rule, learning_rate: f32) -> Optimizer {
        Optimizer {
            rule,
            learning_rate,
            clipnorm: None,
            clipvalue: None,
            global_clipnorm: None,
            weight_decay: None,
            iterations: 0,
            slots: Vec::new(),
        }
    }

    /// `SGD(learning_rate)`: momentum 0, no Nesterov (Keras' default learning rate is 0.01).
    pub fn sgd(learning_rate: f32) -> Optimizer {
        Optimizer::with(
            Rule::Sgd {
                momentum: 0.0,
                nesterov: false,
            },
            learning_rate,
        )
    }

    /// `Adam(learning_rate)`: beta_1 0.9, beta_2 0.999, epsilon 1e-7 (Keras' default learning rate is 0.001).
    pub fn adam(learning_rate: f32) -> Optimizer {
        Optimizer::with(
            Rule::Adam {
                beta_1: 0.9,
                beta_2: 0.999,
                epsilon: 1e-7,
                amsgrad: false,
            },
            learning_rate,
        )
    }

    /// `RMSprop(learning_rate)`: rho 0.9, momentum 0, epsilon 1e-7, not centered (default learning rate 0.001).
    pub fn rmsprop(learning_rate: f32) -> Optimizer {
        Optimizer::with(
            Rule::RmsProp {
                rho: 0.9,
                momentum: 0.0,
                epsilon: 1e-7,
                centered: false,
            },
            learning_rate,
        )
    }

    /// An optimizer by Keras name with Keras' defaults (`"sgd"`, `"adam"`, `"rmsprop"`), as `compile(optimizer="adam")`.
    ///
    /// # Errors
    /// An unknown name, with the list of known ones.
    pub fn from_name(name: &str) -> Result<Optimizer> {
        match name.to_ascii_lowercase().as_str() {
            "sgd" => Ok(Optimizer::sgd(0.01)),
            "adam" => Ok(Optimizer::adam(0.001)),
            "rmsprop" => Ok(Optimizer::rmsprop(0.001)),
            _ => Err(Error::unknown("optimizer", name, OPTIMIZER_NAMES)),
        }
    }

    /// The Keras name (`"sgd"`, `"adam"`, `"rmsprop"`).
    pub fn name(&self) -> &'static str {
        match self.rule {
            Rule::Sgd { .. } => "sgd",
            Rule::Adam { .. } => "adam",
            Rule::RmsProp { .. } => "rmsprop",
        }
    }

    fn class_name(&self) -> &'static str {
        match self.rule {
            Rule::Sgd { .. } => "SGD",
            Rule::Adam { .. } => "Adam",
            Rule::RmsProp { .. } => "RMSprop",
        }
    }

    /// The learning rate.
    pub fn learning_rate(&self) -> f32 {
        self.learning_rate
    }

    /// Number of updates applied so far (Keras `optimizer.iterations`).
    pub fn iterations(&self) -> u64 {
        self.iterations
    }

    /// Momentum (SGD and RMSprop; ignored by Adam).
    pub fn momentum(mut self, v: f64) -> Optimizer {
        match &mut self.rule {
            Rule::Sgd { momentum, .. } | Rule::RmsProp { momentum, .. } => *momentum = v,
            Rule::Adam { .. } => {}
        }
        self
    }
    /// Nesterov momentum (SGD).
    pub fn nesterov(mut self, v: bool) -> Optimizer {
        if let Rule::Sgd { nesterov, .. } = &mut self.rule {
            *nesterov = v;
        }
        self
    }
    /// Adam's first-moment decay.
    pub fn beta_1(mut self, v: f64) -> Optimizer {
        if let Rule::Adam { beta_1, .. } = &mut self.rule {
            *beta_1 = v;
        }
        self
    }
    /// Adam's second-moment decay.
    pub fn beta_2(mut self, v: f64) -> Optimizer {
        if let Rule::Adam { beta_2, .. } = &mut self.rule {
            *beta_2 = v;
        }
        self
    }
    /// Adam's AMSGrad variant (keeps the maximum of the second moments).
    pub fn amsgrad(mut self, v: bool) -> Optimizer {
        if let Rule::Adam { amsgrad, .. } = &mut self.rule {
            *amsgrad = v;
        }
        self
    }
    /// The epsilon of Adam and RMSprop.
    pub fn epsilon(mut self, v: f64) -> Optimizer {
        match &mut self.rule {
            Rule::Adam { epsilon, .. } | Rule::RmsProp { epsilon, .. } => *epsilon = v,
            Rule::Sgd { .. } => {}
        }
        self
    }
    /// RMSprop's decay of the squared-gradient average.
    pub fn rho(mut self, v: f64) -> Optimizer {
        if let Rule::RmsProp { rho, .. } = &mut self.rule {
            *rho = v;
        }
        self
    }
    /// Centered RMSprop (normalises by the variance estimate).
    pub fn centered(mut self, v: bool) -> Optimizer {
        if let Rule::RmsProp { centered, .. } = &mut self.rule {
            *centered = v;
        }
        self
    }
    /// Clips each weight's gradient to this L2 norm (Keras `clipnorm`).
    pub fn clipnorm(mut self, v: f32) -> Optimizer {
        self.clipnorm = Some(v);
        self
    }
    /// Clips every gradient value to `[-v, v]` (Keras `clipvalue`).
    pub fn clipvalue(mut self, v: f32) -> Optimizer {
        self.clipvalue = Some(v);
        self
    }
    /// Scales all gradients together so their joint L2 norm is at most this (Keras `global_clipnorm`).
    pub fn global_clipnorm(mut self, v: f32) -> Optimizer {
        self.global_clipnorm = Some(v);
        self
    }
    /// Decoupled weight decay: `w -= w * weight_decay * learning_rate` before each update (Keras `weight_decay`).
    pub fn weight_decay(mut self, v: f32) -> Optimizer {
        self.weight_decay = Some(v);
        self
    }

    /// Forgets the state (iterations and slots), as a freshly made Keras optimizer.
    pub fn reset(&mut self) {
        self.iterations = 0;
        self.slots.clear();
    }

    /// Checks the settings as Keras' constructor does.
    pub(crate) fn validate(&self) -> Result<()> {
        let ctx = format!("Optimizer {}", self.class_name());
        let set = [self.clipnorm, self.clipvalue, self.global_clipnorm]
            .iter()
            .filter(|v| v.is_some())
            .count();
        if set > 1 {
            return Err(Error::invalid(
                ctx,
                "clipnorm/clipvalue/global_clipnorm",
                "at most one of them",
                format!(
                    "clipnorm={:?}, clipvalue={:?}, global_clipnorm={:?}",
                    self.clipnorm, self.clipvalue, self.global_clipnorm
                ),
            ));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate >= 0.0) {
            return Err(Error::invalid(
                ctx,
                "learning_rate",
                "a non-negative number",
                self.learning_rate,
            ));
        }
        match self.rule {
            Rule::Sgd { momentum, .. } if !(0.0..=1.0).contains(&momentum) => Err(Error::invalid(
                ctx,
                "momentum",
                "a float in [0, 1]",
                momentum,
            )),
            _ => Ok(()),
        }
    }

    fn n_slots(&self) -> usize {
        match self.rule {
            Rule::Sgd { momentum, .. } => usize::from(momentum != 0.0),
            Rule::Adam { amsgrad, .. } => 2 + usize::from(amsgrad),
            Rule::RmsProp {
                momentum, centered, ..
            } => 1 + usize::from(momentum > 0.0) + usize::from(centered),
        }
    }

    /// Applies one update to `weights` from `grads` (same order and shapes). `None` gradients (weights the loss
    /// does not depend on) leave the weight and its slots untouched, as Keras skips them.
    pub(crate) fn apply(&mut self, weights: &mut [ArrayD<f32>], grads: Vec<Option<ArrayD<f32>>>) {
        if self.slots.len() != weights.len() {
            let n = self.n_slots();
            self.slots = weights
                .iter()
                .map(|w| (0..n).map(|_| ArrayD::zeros(w.raw_dim())).collect())
                .collect();
        }
        let grads = self.clip(grads);
        let lr = self.learning_rate;
        let step = (self.iterations + 1) as f32;
        for ((w, g), slots) in weights.iter_mut().zip(grads).zip(self.slots.iter_mut()) {
            let Some(g) = g else { continue };
            if let Some(wd) = self.weight_decay {
                let k = wd * lr;
                w.mapv_inplace(|v| v - v * k);
            }
            match self.rule {
                Rule::Sgd { momentum, nesterov } => {
                    let momentum = momentum as f32;
                    if momentum != 0.0 {
                        let m = &mut slots[0];
                        // m = m * momentum - g * lr; w += nesterov ? m * momentum - g * lr : m
                        Zip::from(&mut *m)
                            .and(&g)
                            .for_each(|m, &g| *m = *m * momentum - g * lr);
                        if nesterov {
                            Zip::from(&mut *w)
                                .and(&*m)
                                .and(&g)
                                .for_each(|w, &m, &g| *w += m * momentum - g * lr);
                        } else {
                            Zip::from(&mut *w).and(&*m).for_each(|w, &m| *w += m);
                        }
                    } else {
                        Zip::from(&mut *w).and(&g).for_each(|w, &g| *w -= g * lr);
                    }
                }
                Rule::Adam {
                    beta_1,
                    beta_2,
                    epsilon,
                    amsgrad,
                } => {
                    let (c1, c2) = ((1.0 - beta_1) as f32, (1.0 - beta_2) as f32);
                    let (beta_1, beta_2, epsilon) = (beta_1 as f32, beta_2 as f32, epsilon as f32);
                    let b1p = beta_1.powf(step);
                    let b2p = beta_2.powf(step);
                    let alpha = lr * (1.0 - b2p).sqrt() / (1.0 - b1p);
                    let (m, rest) = slots.split_at_mut(1);
                    let (v, vhat) = rest.split_at_mut(1);
                    let (m, v) = (&mut m[0], &mut v[0]);
                    Zip::from(&mut *m)
                        .and(&g)
                        .for_each(|m, &g| *m += (g - *m) * c1);
                    Zip::from(&mut *v)
                        .and(&g)
                        .for_each(|v, &g| *v += (g * g - *v) * c2);
                    let v_used: &ArrayD<f32> = if amsgrad {
                        let vh = &mut vhat[0];
                        Zip::from(&mut *vh).and(&*v).for_each(|h, &v| *h = h.max(v));
                        vh
                    } else {
                        v
                    };
                    Zip::from(&mut *w)
                        .and(&*m)
                        .and(v_used)
                        .for_each(|w, &m, &v| *w -= (m * alpha) / (v.sqrt() + epsilon));
                }
                Rule::RmsProp {
                    rho,
                    momentum,
                    epsilon,
                    centered,
                } => {
                    let c = (1.0 - rho) as f32;
                    let (rho, momentum, epsilon) = (rho as f32, momentum as f32, epsilon as f32);
                    let (vel, rest) = slots.split_at_mut(1);
                    let vel = &mut vel[0];
                    Zip::from(&mut *vel)
                        .and(&g)
                        .for_each(|v, &g| *v = rho * *v + c * (g * g));
                    let mut rest = rest.iter_mut();
                    let mom = if momentum > 0.0 { rest.next() } else { None };
                    let avg = if centered { rest.next() } else { None };
                    // increment = lr * g / sqrt(denominator)
                    let mut inc = g.clone();
                    match avg {
                        Some(a) => {
                            Zip::from(&mut *a)
                                .and(&g)
                                .for_each(|a, &g| *a = rho * *a + c * g);
                            Zip::from(&mut inc)
                                .and(&*vel)
                                .and(&*a)
                                .for_each(|i, &v, &a| {
                                    let den = v - a * a + epsilon;
                                    *i = (lr * *i) / den.sqrt();
                                });
                        }
                        None => {
                            Zip::from(&mut inc).and(&*vel).for_each(|i, &v| {
                                *i = (lr * *i) / (v + epsilon).sqrt();
                            });
                        }
                    }
                    match mom {
                        Some(mo) => {
                            Zip::from(&mut *mo)
                                .and(&inc)
                                .for_each(|m, &i| *m = momentum * *m + i);
                            Zip::from(&mut *w).and(&*mo).for_each(|w, &m| *w -= m);
                        }
                        None => Zip::from(&mut *w).and(&inc).for_each(|w, &i| *w -= i),
                    }
                }
            }
        }
        self.iterations += 1;
    }

    /// Keras' `_clip_gradients`: clipnorm per weight, else global_clipnorm over all, else clipvalue.
    fn clip(&self, grads: Vec<Option<ArrayD<f32>>>) -> Vec<Option<ArrayD<f32>>> {
        if let Some(c) = self.clipnorm.filter(|c| *c > 0.0) {
            return grads
                .into_iter()
                .map(|g| {
                    g.map(|g| {
                        let l2sum: f32 = g.iter().map(|v| v * v).sum();
                        let l2norm = if l2sum > 0.0 { l2sum.sqrt() } else { l2sum };
                        let den = l2norm.max(c);
                        g.mapv(|v| (v * c) / den)
                    })
                })
                .collect();
        }
        if let Some(c) = self.global_clipnorm.filter(|c| *c > 0.0) {
            let sq: f32 = grads
                .iter()
                .flatten()
                .map(|g| g.iter().map(|v| v * v).sum::<f32>())
                .sum();
            let norm = sq.sqrt();
            let scale = c * (1.0 / norm).min(1.0 / c);
            return grads
                .into_iter()
                .map(|g| g.map(|g| g.mapv(|v| v * scale)))
                .collect();
        }
        if let Some(c) = self.clipvalue.filter(|c| *c > 0.0) {
            return grads
                .into_iter()
                .map(|g| g.map(|g| g.mapv(|v| v.clamp(-c, c))))
                .collect();
        }
        grads
    }

    /// The Keras serialization of the optimizer (as in a compile_config).
    pub(crate) fn to_config(&self) -> Value {
        let mut c = Map::new();
        c.insert("name".into(), json!(self.name()));
        c.insert("learning_rate".into(), json!(self.learning_rate));
        c.insert("weight_decay".into(), json!(self.weight_decay));
        c.insert("clipnorm".into(), json!(self.clipnorm));
        c.insert("global_clipnorm".into(), json!(self.global_clipnorm));
        c.insert("clipvalue".into(), json!(self.clipvalue));
        c.insert("use_ema".into(), json!(false));
        c.insert("ema_momentum".into(), json!(0.99));
        c.insert("ema_overwrite_frequency".into(), Value::Null);
        c.insert("loss_scale_factor".into(), Value::Null);
        c.insert("gradient_accumulation_steps".into(), Value::Null);
        match self.rule {
            Rule::Sgd { momentum, nesterov } => {
                c.insert("momentum".into(), json!(momentum));
                c.insert("nesterov".into(), json!(nesterov));
            }
            Rule::Adam {
                beta_1,
                beta_2,
                epsilon,
                amsgrad,
            } => {
                c.insert("beta_1".into(), json!(beta_1));
                c.insert("beta_2".into(), json!(beta_2));
                c.insert("epsilon".into(), json!(epsilon));
                c.insert("amsgrad".into(), json!(amsgrad));
            }
            Rule::RmsProp {
                rho,
                momentum,
                epsilon,
                centered,
            } => {
                c.insert("rho".into(), json!(rho));
                c.insert("momentum".into(), json!(momentum));
                c.insert("epsilon".into(), json!(epsilon));
                c.insert("centered".into(), json!(centered));
            }
        }
        json!({"module": "keras.optimizers", "class_name": self.class_name(), "config": Value::Object(c), "registered_name": null})
    }

    /// Reads a compile_config optimizer: a name, or a serialized `SGD`/`Adam`/`RMSprop`.
    ///
    /// # Errors
    /// Another optimizer class, or a setting rnnlab does not implement (EMA, loss scaling, accumulation, a
    /// learning-rate schedule).
    pub(crate) fn from_config(v: &Value) -> Result<Optimizer> {
        let (class, cfg) = match v {
            Value::String(s) => return Optimizer::from_name(s),
            Value::Object(o) => (
                o.get("class_name").and_then(Value::as_str).unwrap_or(""),
                o.get("config").cloned().unwrap_or(json!({})),
            ),
            other => {
                return Err(Error::format(
                    "compile_config",
                    format!("an optimizer must be a name or a serialized optimizer, found {other}"),
                ))
            }
        };
        let mut opt = Optimizer::from_name(class)?;
        let ctx = format!("Optimizer {class}");
        let num = |k: &str| -> Result<Option<f32>> {
            match cfg.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => Ok(n.as_f64().map(|f| f as f32)),
                Some(other) => Err(Error::Unsupported(format!(
                    "{ctx}: {k}={other} is not supported (a number is; learning-rate schedules are not)"
                ))),
            }
        };
        let flag = |k: &str| cfg.get(k).and_then(Value::as_bool).unwrap_or(false);
        let num64 = |k: &str| -> Result<Option<f64>> {
            Ok(num(k)?.map(|_| cfg[k].as_f64().unwrap_or(0.0)))
        };
        if let Some(lr) = num("learning_rate")? {
            opt.learning_rate = lr;
        }
        opt.clipnorm = num("clipnorm")?;
        opt.clipvalue = num("clipvalue")?;
        opt.global_clipnorm = num("global_clipnorm")?;
        opt.weight_decay = num("weight_decay")?;
        if flag("use_ema") {
            return Err(Error::Unsupported(format!(
                "{ctx}: use_ema=True is not supported"
            )));
        }
        for k in ["loss_scale_factor", "gradient_accumulation_steps"] {
            if num(k)?.is_some() {
                return Err(Error::Unsupported(format!("{ctx}: {k} is not supported")));
            }
        }
        match &mut opt.rule {
            Rule::Sgd { momentum, nesterov } => {
                *momentum = num64("momentum")?.unwrap_or(0.0);
                *nesterov = flag("nesterov");
            }
            Rule::Adam {
                beta_1,
                beta_2,
                epsilon,
                amsgrad,
            } => {
                *beta_1 = num64("beta_1")?.unwrap_or(0.9);
                *beta_2 = num64("beta_2")?.unwrap_or(0.999);
                *epsilon = num64("epsilon")?.unwrap_or(1e-7);
                *amsgrad = flag("amsgrad");
            }
            Rule::RmsProp {
                rho,
                momentum,
                epsilon,
                centered,
            } => {
                *rho = num64("rho")?.unwrap_or(0.9);
                *momentum = num64("momentum")?.unwrap_or(0.0);
                *epsilon = num64("epsilon")?.unwrap_or(1e-7);
                *centered = flag("centered");
            }
        }
        opt.validate()?;
        Ok(opt)
    }

    /// How Keras creates the slot variables: groups of slot kinds, each group interleaved per weight
    /// (`add_optimizer_variables(vars, ["momentum", "velocity"])` gives m₀ v₀ m₁ v₁ ...).
    fn slot_groups(&self) -> Vec<Vec<usize>> {
        match self.rule {
            Rule::Sgd { momentum, .. } => {
                if momentum != 0.0 {
                    vec![vec![0]]
                } else {
                    vec![]
                }
            }
            Rule::Adam { amsgrad, .. } => {
                let mut g = vec![vec![0, 1]];
                if amsgrad {
                    g.push(vec![2]);
                }
                g
            }
            Rule::RmsProp {
                momentum, centered, ..
            } => {
                let mut g = vec![vec![0]];
                let mut k = 1;
                if momentum > 0.0 {
                    g.push(vec![k]);
                    k += 1;
                }
                if centered {
                    g.push(vec![k]);
                }
                g
            }
        }
    }

    /// The optimizer's variables as Keras saves them under `optimizer/vars`: the iteration count, the learning
    /// rate, then the slots in creation order (empty until the first update builds them).
    pub(crate) fn keras_vars(&self) -> (i64, f32, Vec<ArrayD<f32>>) {
        let mut v = Vec::new();
        if !self.slots.is_empty() {
            for group in self.slot_groups() {
                for w in &self.slots {
                    for &k in &group {
                        v.push(w[k].clone());
                    }
                }
            }
        }
        (self.iterations as i64, self.learning_rate, v)
    }

    /// Restores saved variables (see [`Optimizer::keras_vars`]) for weights of these shapes.
    ///
    /// # Errors
    /// A count or shape that does not fit this optimizer and model (the state is left fresh).
    pub(crate) fn set_keras_vars(
        &mut self,
        iterations: i64,
        vars: Vec<ArrayD<f32>>,
        shapes: &[Vec<usize>],
    ) -> Result<()> {
        let groups = self.slot_groups();
        let per_weight: usize = groups.iter().map(Vec::len).sum();
        if vars.is_empty() {
            self.iterations = iterations.max(0) as u64;
            self.slots.clear();
            return Ok(());
        }
        if vars.len() != per_weight * shapes.len() {
            return Err(Error::format(
                "optimizer state",
                format!(
                    "{} variables saved, but {} {} with {} weights has {}",
                    vars.len(),
                    self.class_name(),
                    if per_weight == 1 { "slot" } else { "slots" },
                    shapes.len(),
                    per_weight * shapes.len()
                ),
            ));
        }
        let n = self.n_slots();
        let mut slots: Vec<Vec<Option<ArrayD<f32>>>> = vec![vec![None; n]; shapes.len()];
        let mut it = vars.into_iter();
        for group in &groups {
            for (w, shape) in shapes.iter().enumerate() {
                for &k in group {
                    let a = it.next().expect("count checked");
                    if a.shape() != shape.as_slice() {
                        return Err(Error::format(
                            "optimizer state",
                            format!(
                                "a slot of weight {w} has shape {:?}, the weight {:?}",
                                a.shape(),
                                shape
                            ),
                        ));
                    }
                    slots[w][k] = Some(a);
                }
            }
        }
        self.slots = slots
            .into_iter()
            .map(|w| {
                w.into_iter()
                    .map(|s| s.expect("every slot filled"))
                    .collect()
            })
            .collect();
        self.iterations = iterations.max(0) as u64;
        Ok(())
    }
}
