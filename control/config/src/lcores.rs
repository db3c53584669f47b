//! The EAL `--lcores` map syntax, so the config can be checked (and the
//! placement planned) before EAL sees it.
//!
//! Grammar (DPDK `eal_parse_lcores`): items separated by `,` outside
//! parentheses; each item is `LCORES[@CPUS]` where both sides are a number,
//! a range `a-b`, or a group `(a,b-c,…)`.
//!
//! * `1@3`, `(1-2)@(4,6)`: every lcore on the left runs on the CPU set on the right;
//! * `2`, `3-4`: each lcore runs on the CPU with its own number;
//! * `(0,6)`: every lcore in the group floats over the whole group's CPUs.

use std::collections::{BTreeMap, BTreeSet};

/// `RTE_MAX_LCORE` of the DPDK this project links (Debian 12's 22.11 build).
pub const MAX_LCORE: u32 = 128;
/// Highest CPU number + 1 that EAL's `rte_cpuset_t` (`cpu_set_t`) can hold.
pub const MAX_CPU: u32 = 1024;

/// Parse `a`, `a-b` or `(a,b-c,…)`; returns the set and whether it was a group.
fn parse_set(s: &str, what: &str, max: u32) -> Result<(BTreeSet<u32>, bool), String> {
    let (inner, group) = match s.strip_prefix('(') {
        Some(rest) => (
            rest.strip_suffix(')')
                .ok_or_else(|| format!("`{s}`: unbalanced parenthesis"))?,
            true,
        ),
        None => (s, false),
    };
    let mut set = BTreeSet::new();
    for part in inner.split(',') {
        let num = |x: &str| -> Result<u32, String> {
            let n: u32 = x
                .trim()
                .parse()
                .map_err(|_| format!("`{x}` is not a {what} number"))?;
            if n >= max {
                return Err(format!("{what} {n} is out of range (must be < {max})"));
            }
            Ok(n)
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(format!("`{part}`: range runs backwards"));
                }
                set.extend(a..=b);
            }
            None => {
                set.insert(num(part)?);
            }
        }
    }
    Ok((set, group))
}

/// Split at commas outside parentheses.
fn items(s: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err("unbalanced `)`".into());
                }
            }
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unbalanced `(`".into());
    }
    out.push(&s[start..]);
    Ok(out)
}

/// Parse an EAL `--lcores` map into lcore → CPUs (sorted, non-empty).
///
/// Errors are human-readable reasons (the caller adds key and value).
pub fn parse_lcore_map(map: &str) -> Result<BTreeMap<u32, Vec<u32>>, String> {
    let mut out: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    if map.trim().is_empty() {
        return Ok(out);
    }
    for item in items(map)? {
        let item = item.trim();
        if item.is_empty() {
            return Err("empty item (stray `,`)".into());
        }
        let (lc, cpus) = match item.split_once('@') {
            Some((l, c)) => (l, Some(c)),
            None => (item, None),
        };
        let (lcores, group) =
            parse_set(lc.trim(), "lcore", MAX_LCORE).map_err(|e| format!("`{item}`: {e}"))?;
        let cpu_of: Box<dyn Fn(u32) -> Vec<u32>> = match cpus {
            Some(c) => {
                let (set, _) =
                    parse_set(c.trim(), "CPU", MAX_CPU).map_err(|e| format!("`{item}`: {e}"))?;
                let v: Vec<u32> = set.into_iter().collect();
                Box::new(move |_| v.clone())
            }
            None if group => {
                let v: Vec<u32> = lcores.iter().copied().collect();
                Box::new(move |_| v.clone())
            }
            None => Box::new(|l| vec![l]),
        };
        for l in lcores {
            if out.insert(l, cpu_of(l)).is_some() {
                return Err(format!("`{item}`: lcore {l} is mapped twice"));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Vec<(u32, Vec<u32>)> {
        parse_lcore_map(s).unwrap().into_iter().collect()
    }

    #[test]
    fn dpdk_doc_example() {
        // From the EAL parameters guide.
        let got = m("1,2@(5-7),(3-5)@(0,2),(0,6),7-8");
        assert_eq!(
            got,
            vec![
                (0, vec![0, 6]),
                (1, vec![1]),
                (2, vec![5, 6, 7]),
                (3, vec![0, 2]),
                (4, vec![0, 2]),
                (5, vec![0, 2]),
                (6, vec![0, 6]),
                (7, vec![7]),
                (8, vec![8]),
            ]
        );
    }

    #[test]
    fn simple_maps() {
        assert_eq!(m("0@0,1@0"), vec![(0, vec![0]), (1, vec![0])]);
        assert_eq!(m(""), vec![]);
        assert_eq!(m(" 0@1 , 1@2 "), vec![(0, vec![1]), (1, vec![2])]);
    }

    #[test]
    fn rejects() {
        for bad in [
            "zz", "1@", "@1", "1@(2", "1,,2", "(1,2", "1)", "3-1", "200", "1@5000", "0@0,0@1",
            "1@2@3",
        ] {
            assert!(parse_lcore_map(bad).is_err(), "{bad:?} accepted");
        }
    }
}
