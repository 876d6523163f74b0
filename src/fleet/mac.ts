/** MAC addresses are stored and compared in one form: lower-case, colon-separated. */
const HEX12 = /^[0-9a-f]{12}$/;

/** Accepts aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff, aabb.ccdd.eeff and aabbccddeeff (any case). */
export function normalizeMac(text: string): string | undefined {
  const hex = text
    .trim()
    .toLowerCase()
    .replace(/[:\-.]/g, '');
  if (!HEX12.test(hex)) return undefined;
  // Reject separators in odd places ("a:abbcc…") by checking the original had a known shape.
  const shapes = [
    /^([0-9a-f]{2}[:]){5}[0-9a-f]{2}$/i,
    /^([0-9a-f]{2}-){5}[0-9a-f]{2}$/i,
    /^([0-9a-f]{4}\.){2}[0-9a-f]{4}$/i,
    /^[0-9a-f]{12}$/i,
  ];
  if (!shapes.some((shape) => shape.test(text.trim()))) return undefined;
  return hex.match(/../g)!.join(':');
}

/** iPXE's ${mac:hexhyp} form, used in boot URLs: aa-bb-cc-dd-ee-ff. */
export function macToHyphens(mac: string): string {
  return mac.replace(/:/g, '-');
}
