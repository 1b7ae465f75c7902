//! The state kept between reads: a split header, a frame whose payload is
//! still arriving, a fragmented message being assembled. Split from `frame`
//! so that the decoder's entry points read on their own.

use super::{
    close, control_message, data_message, is_control, parse_head, unmask, violation, Head,
    InFlight, Kind, Message, Partial, ProtocolViolation, Rules, WsMessage, INVALID_UTF8,
    MAX_CONTROL, MAX_HEAD,
};

impl Partial {
    pub(super) fn new() -> Self {
        Self {
            head: [0; MAX_HEAD],
            head_len: 0,
            frame: None,
            control: [0; MAX_CONTROL],
            control_len: 0,
            message: None,
        }
    }

    /// Nothing pending: the box can go.
    pub(super) fn is_empty(&self) -> bool {
        self.head_len == 0 && self.frame.is_none() && self.message.is_none()
    }

    /// Keeps the bytes of an incomplete header (fewer than `MAX_HEAD`).
    pub(super) fn save_head(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(MAX_HEAD - self.head_len);
        self.head[self.head_len..self.head_len + n].copy_from_slice(&bytes[..n]);
        self.head_len += n;
    }

    /// Completes a split header; returns it and the bytes it took from `input`.
    pub(super) fn resume_head(
        &mut self,
        input: &[u8],
        rules: Rules,
    ) -> Result<Option<(Head, usize)>, ProtocolViolation> {
        let before = self.head_len;
        self.save_head(input);
        let so_far = self.message.as_ref().map(|m| m.data.len());
        let Some((head, len)) = parse_head(&self.head[..self.head_len], so_far, rules)? else {
            return Ok(None);
        };
        self.head_len = 0;
        Ok(Some((head, len - before)))
    }

    /// Starts a frame whose payload has not all arrived.
    pub(super) fn begin(&mut self, head: Head) {
        if matches!(head.kind, Kind::Text | Kind::Binary) {
            self.message = Some(Message::new(head.kind == Kind::Text, head.compressed));
        }
        self.frame = Some(InFlight { head, received: 0 });
    }

    /// Takes what `input` holds of the in-flight frame's payload; returns the
    /// bytes taken and whether to go on.
    pub(super) fn resume_payload(
        &mut self,
        input: &mut [u8],
        rules: Rules,
        on: &mut impl FnMut(WsMessage<'_>) -> bool,
    ) -> Result<(usize, bool), ProtocolViolation> {
        let Some(frame) = self.frame.as_mut() else {
            return Ok((0, true));
        };
        let n = (frame.head.len - frame.received).min(input.len());
        let chunk = &mut input[..n];
        let mut mask = frame.head.mask;
        mask.rotate_left(frame.received % 4);
        unmask(chunk, mask);
        frame.received += n;
        let head = frame.head;
        let done = frame.received == head.len;
        if is_control(head.kind) {
            self.control[self.control_len..self.control_len + n].copy_from_slice(chunk);
            self.control_len += n;
        } else {
            self.append(chunk, rules.max, done && head.fin)?;
        }
        if !done {
            return Ok((n, true));
        }
        self.frame = None;
        let go = if is_control(head.kind) {
            let len = std::mem::take(&mut self.control_len);
            on(control_message(head.kind, &self.control[..len])?)
        } else if head.fin {
            self.finish_message(on)?
        } else {
            true
        };
        Ok((n, go))
    }

    /// Appends payload to the message; fails fast on invalid UTF-8 unless
    /// `last` (then [`Partial::finish_message`] checks the whole) or the
    /// message is compressed (its bytes are not text until inflated).
    pub(super) fn append(
        &mut self,
        chunk: &[u8],
        max: usize,
        last: bool,
    ) -> Result<(), ProtocolViolation> {
        let Some(m) = self.message.as_mut() else {
            return Err(violation(close::PROTOCOL, "continuation without a message"));
        };
        let needed = m.data.len() + chunk.len();
        if needed > m.data.capacity() {
            // Grow geometrically (many small fragments stay linear), never past the limit.
            let target = m
                .data
                .capacity()
                .saturating_mul(2)
                .clamp(needed, max.max(needed));
            m.data.reserve_exact(target - m.data.len());
        }
        m.data.extend_from_slice(chunk);
        if m.text && !m.compressed && !last {
            m.validate_prefix()?;
        }
        Ok(())
    }

    /// Delivers the completed message and frees its buffer.
    pub(super) fn finish_message(
        &mut self,
        on: &mut impl FnMut(WsMessage<'_>) -> bool,
    ) -> Result<bool, ProtocolViolation> {
        let Some(m) = self.message.take() else {
            return Err(violation(close::PROTOCOL, "continuation without a message"));
        };
        Ok(on(data_message(m.text, m.compressed, &m.data)?))
    }
}

impl Message {
    pub(super) fn new(text: bool, compressed: bool) -> Self {
        Self {
            text,
            compressed,
            data: Vec::new(),
            valid_up_to: 0,
        }
    }

    /// Fails on invalid UTF-8; only a code point split at the end may stay unchecked.
    pub(super) fn validate_prefix(&mut self) -> Result<(), ProtocolViolation> {
        match std::str::from_utf8(&self.data[self.valid_up_to..]) {
            Ok(_) => self.valid_up_to = self.data.len(),
            Err(e) if e.error_len().is_some() => return Err(INVALID_UTF8),
            Err(e) => self.valid_up_to += e.valid_up_to(),
        }
        Ok(())
    }
}
