//! vCPUs and memory of EC2 instance types, for the dashboard's running
//! capacity. Derived from AWS's naming scheme (family letter, size) rather
//! than a list of every type: sizes double vCPUs from `large` (2) upwards,
//! and memory per vCPU is fixed per family class. Burstable `t` types and
//! the small sizes are listed. Unknown types return `None` (the dashboard
//! counts them apart, never guesses).

/// vCPUs and memory (MiB) of one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Specs {
    pub vcpus: u32,
    pub memory_mib: u64,
}

const fn s(vcpus: u32, memory_mib: u64) -> Option<Specs> {
    Some(Specs { vcpus, memory_mib })
}

pub fn specs(instance_type: &str) -> Option<Specs> {
    let (family, size) = instance_type.split_once('.')?;
    let class = family.chars().next()?;
    // Burstable: t2 has one vCPU below medium; t3/t3a/t4g have two.
    if class == 't' {
        let t2 = family == "t2";
        return match size {
            "nano" => s(if t2 { 1 } else { 2 }, 512),
            "micro" => s(if t2 { 1 } else { 2 }, 1024),
            "small" => s(if t2 { 1 } else { 2 }, 2048),
            "medium" => s(2, 4096),
            "large" => s(2, 8192),
            "xlarge" => s(4, 16384),
            "2xlarge" => s(8, 32768),
            _ => None,
        };
    }
    let vcpus: u32 = match size {
        "medium" => 1,
        "large" => 2,
        "xlarge" => 4,
        "metal" => return None,
        other => {
            let n: u32 = other.strip_suffix("xlarge")?.parse().ok()?;
            4 * n
        }
    };
    // GiB of memory per vCPU by class: c compute, m general, r/x memory.
    let gib_per_vcpu: u64 = match class {
        'c' => 2,
        'm' => 4,
        'r' => 8,
        'x' => 16,
        'g' => 4,
        _ => return None,
    };
    s(vcpus, u64::from(vcpus) * gib_per_vcpu * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_shapes() {
        assert_eq!(specs("t3.micro"), s(2, 1024));
        assert_eq!(specs("t2.micro"), s(1, 1024));
        assert_eq!(specs("m5.large"), s(2, 8192));
        assert_eq!(specs("c5.xlarge"), s(4, 8192));
        assert_eq!(specs("r5.2xlarge"), s(8, 65536));
        assert_eq!(specs("m6i.24xlarge"), s(96, 393_216));
        assert_eq!(specs("g4dn.xlarge"), s(4, 16384));
    }

    #[test]
    fn unknown_shapes_are_none() {
        for t in ["", "m5", "m5.metal", "z1d.large", "t3.huge", "m5.bigxlarge"] {
            assert_eq!(specs(t), None, "{t}");
        }
    }
}
