//! What, besides libtorch's version and the thread count, changes the bits a libtorch kind
//! computes on this machine: the CPU kernels ATen dispatches to (its `CPUCapability`: the
//! same training run gives other weights with `ATEN_CPU_CAPABILITY=default` than on AVX-512),
//! the bf16 instructions oneDNN uses, and environment variables that steer MKL, oneDNN and
//! cuBLAS numerics. They go into a worker kind's key ([`super::platform::worker_runtime`]),
//! and the worker is started with the keyed capability so it computes exactly what its key
//! names.

use std::collections::BTreeMap;

/// ATen's CPU capability levels (x86), lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CpuCapability {
    Default,
    Avx2,
    Avx512,
}

impl CpuCapability {
    /// As `torch.backends.cpu.get_cpu_capability()` prints it.
    pub fn label(self) -> &'static str {
        match self {
            CpuCapability::Default => "DEFAULT",
            CpuCapability::Avx2 => "AVX2",
            CpuCapability::Avx512 => "AVX512",
        }
    }

    /// The `ATEN_CPU_CAPABILITY` value that selects this level.
    pub fn env_value(self) -> &'static str {
        match self {
            CpuCapability::Default => "default",
            CpuCapability::Avx2 => "avx2",
            CpuCapability::Avx512 => "avx512",
        }
    }

    /// The level a key's `cpu` entry names (its first word).
    pub fn from_label(label: &str) -> Option<CpuCapability> {
        match label.split('+').next()? {
            "DEFAULT" => Some(CpuCapability::Default),
            "AVX2" => Some(CpuCapability::Avx2),
            "AVX512" => Some(CpuCapability::Avx512),
            _ => None,
        }
    }
}

/// What this CPU supports, by ATen's own test (AVX-512 needs F, VL, BW, DQ and FMA; AVX2
/// needs FMA too), from the kernel's feature flags (`/proc/cpuinfo`).
pub fn supported(flags: &[&str]) -> CpuCapability {
    let has = |f: &str| flags.contains(&f);
    if ["avx512f", "avx512vl", "avx512bw", "avx512dq", "fma"]
        .iter()
        .all(|f| has(f))
    {
        CpuCapability::Avx512
    } else if has("avx2") && has("fma") {
        CpuCapability::Avx2
    } else {
        CpuCapability::Default
    }
}

/// The capability ATen will use: `ATEN_CPU_CAPABILITY` when it names a level (ATen ignores
/// other values), else what the CPU supports.
pub fn effective(flags: &[&str], aten_env: Option<&str>) -> CpuCapability {
    match aten_env {
        Some("default") => CpuCapability::Default,
        Some("avx2") => CpuCapability::Avx2,
        Some("avx512") => CpuCapability::Avx512,
        _ => supported(flags),
    }
}

/// bf16/fp16 instructions oneDNN picks kernels by (native bf16 dot products give other
/// roundings than emulated ones); ignored once `ONEDNN_MAX_CPU_ISA` caps the ISA.
const BF16_FEATURES: &[&str] = &["avx512_bf16", "avx512_fp16", "amx_bf16"];

/// Environment variables that change CPU numerics (MKL's code path, oneDNN's ISA and fp math).
const CPU_NUMERICS_ENV: &[&str] = &[
    "MKL_CBWR",
    "MKL_ENABLE_INSTRUCTIONS",
    "MKL_NUM_THREADS",
    "ONEDNN_MAX_CPU_ISA",
    "DNNL_MAX_CPU_ISA",
    "ONEDNN_DEFAULT_FPMATH_MODE",
    "DNNL_DEFAULT_FPMATH_MODE",
];

/// Environment variables that change CUDA numerics (TF32, cuBLAS workspaces and algorithms).
const CUDA_NUMERICS_ENV: &[&str] = &[
    "NVIDIA_TF32_OVERRIDE",
    "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE",
    "CUBLAS_WORKSPACE_CONFIG",
    "CUBLASLT_WORKSPACE_SIZE",
    "TORCH_CUDNN_V8_API_DISABLED",
];

/// The key entries for a node on `device` (`cpu` or `cuda:N`): on the CPU, `cpu` (the
/// capability, plus the bf16 instructions present) and, when any is set, `env` (the numerics
/// variables, `NAME=value` sorted); on CUDA only `env`.
pub fn runtime_entries(
    device: &str,
    flags: &[&str],
    env: &dyn Fn(&str) -> Option<String>,
) -> BTreeMap<String, String> {
    let mut entries = BTreeMap::new();
    let names = if device == "cpu" {
        let mut cpu = effective(flags, env("ATEN_CPU_CAPABILITY").as_deref())
            .label()
            .to_string();
        let capped = env("ONEDNN_MAX_CPU_ISA").is_some() || env("DNNL_MAX_CPU_ISA").is_some();
        if !capped {
            for f in BF16_FEATURES.iter().filter(|f| flags.contains(f)) {
                cpu.push('+');
                cpu.push_str(f);
            }
        }
        entries.insert("cpu".to_string(), cpu);
        CPU_NUMERICS_ENV
    } else {
        CUDA_NUMERICS_ENV
    };
    if let Some(set) = set_vars(names.iter(), env) {
        entries.insert("env".to_string(), set);
    }
    entries
}

/// The key's `env` entry for a `cmd` node: every numerics variable above that is set
/// (`ATEN_CPU_CAPABILITY` too), since a command may well run PyTorch; its CPU kernels are not
/// keyed (most commands do not depend on them, and the key would stop being shared between
/// machines).
pub fn cmd_env_entry(env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let names = std::iter::once(&"ATEN_CPU_CAPABILITY")
        .chain(CPU_NUMERICS_ENV)
        .chain(CUDA_NUMERICS_ENV);
    set_vars(names, env)
}

/// `NAME=value` of each of `names` that is set, space-separated; `None` when none is.
fn set_vars<'a>(
    names: impl Iterator<Item = &'a &'a str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    let set: Vec<String> = names
        .filter_map(|n| env(n).map(|v| format!("{n}={v}")))
        .collect();
    (!set.is_empty()).then(|| set.join(" "))
}

/// This machine's CPU feature flags (`/proc/cpuinfo`, first processor); empty elsewhere.
pub fn host_flags() -> Vec<&'static str> {
    static FLAGS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    FLAGS
        .get_or_init(|| {
            std::fs::read_to_string("/proc/cpuinfo")
                .map(|text| parse_flags(&text))
                .unwrap_or_default()
        })
        .iter()
        .map(String::as_str)
        .collect()
}

/// The environment a node's worker sees, as [`runtime_entries`] and [`worker_capability`]
/// read it: the node's own `env:` first, then this process's.
pub fn node_env(node_env: &BTreeMap<String, String>, name: &str) -> Option<String> {
    node_env
        .get(name)
        .cloned()
        .or_else(|| std::env::var(name).ok())
}

fn parse_flags(cpuinfo: &str) -> Vec<String> {
    cpuinfo
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "flags").then(|| v.split_whitespace().map(str::to_string).collect())
        })
        .unwrap_or_default()
}

/// The host check before a worker starts: this host must compute what the key's `cpu` entry
/// names (a node planned on an AVX-512 login node cannot give its keyed bits on an AVX2
/// compute node, nor one keyed with native bf16 instructions on a host without them).
/// `Ok(Some(level))` is the `ATEN_CPU_CAPABILITY` value to start the worker with, so that a
/// capability lowered where the plan was made is the one the worker uses.
pub fn worker_capability(
    keyed: Option<&str>,
    flags: &[&str],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<&'static str>, String> {
    let Some(label) = keyed else { return Ok(None) };
    let Some(want) = CpuCapability::from_label(label) else {
        return Err(format!("the key names an unknown CPU capability `{label}`"));
    };
    let here = supported(flags);
    let as_keyed = |n: &str| match n {
        "ATEN_CPU_CAPABILITY" => Some(want.env_value().to_string()),
        _ => env(n),
    };
    let host_label = runtime_entries("cpu", flags, &as_keyed)
        .remove("cpu")
        .unwrap_or_default();
    if want > here || host_label != label {
        return Err(format!(
            "this node's key was computed for CPU `{label}` but this host computes `{}`: plan \
             and run on hosts of the same CPU kind, or lower the plan's CPU with \
             ATEN_CPU_CAPABILITY={} (and ONEDNN_MAX_CPU_ISA) where the plan is made",
            if want > here {
                here.label().to_string()
            } else {
                host_label
            },
            here.min(want).env_value()
        ));
    }
    Ok(Some(want.env_value()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const AVX512: &[&str] = &["fma", "avx2", "avx512f", "avx512vl", "avx512bw", "avx512dq"];

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |n: &str| vars.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())
    }

    #[test]
    fn capability_follows_atens_rules() {
        assert_eq!(supported(AVX512), CpuCapability::Avx512);
        assert_eq!(supported(&["fma", "avx2", "avx512f"]), CpuCapability::Avx2);
        assert_eq!(supported(&["avx2"]), CpuCapability::Default);
        assert_eq!(effective(AVX512, Some("default")), CpuCapability::Default);
        assert_eq!(effective(AVX512, Some("avx2")), CpuCapability::Avx2);
        assert_eq!(
            effective(AVX512, Some("AVX2")),
            CpuCapability::Avx512,
            "ATen ignores it"
        );
    }

    #[test]
    fn cpu_entry_names_capability_and_bf16_instructions() {
        let mut flags = AVX512.to_vec();
        flags.push("avx512_bf16");
        let e = runtime_entries("cpu", &flags, &env_of(&[]));
        assert_eq!(e["cpu"], "AVX512+avx512_bf16");
        assert!(!e.contains_key("env"));
        let e = runtime_entries("cpu", &flags, &env_of(&[("ONEDNN_MAX_CPU_ISA", "AVX2")]));
        assert_eq!(e["cpu"], "AVX512");
        assert_eq!(e["env"], "ONEDNN_MAX_CPU_ISA=AVX2");
    }

    #[test]
    fn numerics_env_is_keyed_per_device_and_other_env_is_not() {
        let env = env_of(&[
            ("NVIDIA_TF32_OVERRIDE", "0"),
            ("MKL_CBWR", "AVX2"),
            ("HOME", "/x"),
        ]);
        assert_eq!(runtime_entries("cpu", AVX512, &env)["env"], "MKL_CBWR=AVX2");
        let cuda = runtime_entries("cuda:0", AVX512, &env);
        assert_eq!(cuda["env"], "NVIDIA_TF32_OVERRIDE=0");
        assert!(
            !cuda.contains_key("cpu"),
            "a GPU result does not depend on the host's ISA"
        );
    }

    #[test]
    fn a_host_that_cannot_compute_the_keyed_cpu_refuses_the_node() {
        let none = env_of(&[]);
        assert_eq!(
            worker_capability(Some("AVX2"), AVX512, &none),
            Ok(Some("avx2"))
        );
        assert_eq!(
            worker_capability(Some("AVX512"), AVX512, &none),
            Ok(Some("avx512"))
        );
        let err = worker_capability(Some("AVX512"), &["fma", "avx2"], &none).unwrap_err();
        assert!(
            err.contains("computes `AVX2`") && err.contains("ATEN_CPU_CAPABILITY=avx2"),
            "{err}"
        );
        // Keyed with native bf16 instructions, run where there are none (and the reverse).
        let err = worker_capability(Some("AVX512+avx512_bf16"), AVX512, &none).unwrap_err();
        assert!(err.contains("computes `AVX512`"), "{err}");
        let mut bf16 = AVX512.to_vec();
        bf16.push("avx512_bf16");
        assert!(worker_capability(Some("AVX512"), &bf16, &none).is_err());
        assert_eq!(worker_capability(None, &[], &none), Ok(None));
    }

    #[test]
    fn flags_come_from_the_first_processor() {
        let text = "processor\t: 0\nflags\t\t: fpu avx2 fma\n\nprocessor\t: 1\nflags\t\t: x\n";
        assert_eq!(parse_flags(text), vec!["fpu", "avx2", "fma"]);
    }
}
